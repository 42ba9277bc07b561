//! The EL 2.2 parser: a rule's text to composite parts of expressions with spans.

use super::lexer::{lex, Tok, Token};
use super::env::{RuleDiagnostic, MAX_NESTING_DEPTH};

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnOp {
    Neg,
    Not,
    Empty,
}

/// Binary operators (the keyword and symbol spellings are one operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

/// An expression node and its byte span in the rule text.
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub kind: ExprKind,
    pub span: (usize, usize),
    /// The height of this subtree (a leaf is 1).
    pub depth: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Ident(String),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `a.b` (the key is a string literal) and `a[b]`.
    Index(Box<Expr>, Box<Expr>),
    /// `a.b(args)`
    Method(Box<Expr>, String, Vec<Expr>),
    /// `ns:name(args)`; the namespace is empty for `name(args)`.
    Call(String, String, Vec<Expr>),
}

/// One part of a composite expression.
#[derive(Debug, Clone)]
pub(crate) enum Part {
    Text,
    Expr(Expr),
}

/// Parses the whole rule text as an EL composite expression (literal text and `${...}`).
pub(crate) fn parse_composite(text: &str) -> Result<Vec<Part>, RuleDiagnostic> {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        if rest.starts_with("${") || rest.starts_with("#{") {
            let (tokens, end) = lex(text, i + 2)?;
            let mut parser = Parser { tokens: &tokens, pos: 0, guard: 0 };
            let expr = parser.expression()?;
            let next = parser.peek();
            if next.tok != Tok::End {
                return Err(unexpected(next));
            }
            parts.push(Part::Expr(expr));
            i = end;
        } else {
            let next = [rest.find("${"), rest.find("#{")].into_iter().flatten().min().unwrap_or(rest.len());
            // A `${` after a backslash is literal text in EL; either way this is text.
            parts.push(Part::Text);
            i += next.max(1).min(rest.len());
            while !text.is_char_boundary(i) {
                i += 1;
            }
        }
    }
    Ok(parts)
}

fn unexpected(token: &Token) -> RuleDiagnostic {
    let what = match &token.tok {
        Tok::End => "'}'".to_string(),
        Tok::Ident(name) => format!("identifier '{name}'"),
        other => format!("{other:?}"),
    };
    RuleDiagnostic {
        code: "syntax_error",
        message: format!("unexpected {what}"),
        span: Some(token.span),
    }
}

fn too_deep(span: (usize, usize)) -> RuleDiagnostic {
    RuleDiagnostic {
        code: "rule_too_deep",
        message: format!("the rule nests more than {MAX_NESTING_DEPTH} levels of operators and parentheses"),
        span: Some(span),
    }
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    /// Recursion depth of the descent, bounded so no input can overflow the stack.
    guard: usize,
}

type PResult = Result<Expr, RuleDiagnostic>;

fn node(kind: ExprKind, span: (usize, usize), children: &[&Expr]) -> PResult {
    let depth = children.iter().map(|c| c.depth).max().unwrap_or(0) + 1;
    if depth > MAX_NESTING_DEPTH {
        return Err(too_deep(span));
    }
    Ok(Expr { kind, span, depth })
}

impl<'t> Parser<'t> {
    fn peek(&self) -> &'t Token {
        // The lexer always ends the tokens with `End`, and the parser never consumes it.
        let last = self.tokens.len().saturating_sub(1);
        &self.tokens[self.pos.min(last)]
    }

    fn peek_at(&self, ahead: usize) -> Option<&'t Token> {
        self.tokens.get(self.pos + ahead)
    }

    fn bump(&mut self) -> &'t Token {
        let token = self.peek();
        if token.tok != Tok::End {
            self.pos += 1;
        }
        token
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if &self.peek().tok == tok {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<&'t Token, RuleDiagnostic> {
        if &self.peek().tok == tok {
            Ok(self.bump())
        } else {
            Err(unexpected(self.peek()))
        }
    }

    fn enter(&mut self) -> Result<(), RuleDiagnostic> {
        self.guard += 1;
        if self.guard > MAX_NESTING_DEPTH {
            return Err(too_deep(self.peek().span));
        }
        Ok(())
    }

    /// `expression := or ('?' expression ':' expression)?`
    fn expression(&mut self) -> PResult {
        self.enter()?;
        let result = self.conditional();
        self.guard -= 1;
        result
    }

    fn conditional(&mut self) -> PResult {
        let cond = self.binary(1)?;
        if self.eat(&Tok::Question) {
            let yes = self.expression()?;
            self.expect(&Tok::Colon)?;
            let no = self.expression()?;
            let span = (cond.span.0, no.span.1);
            let depth = cond.depth.max(yes.depth).max(no.depth) + 1;
            if depth > MAX_NESTING_DEPTH {
                return Err(too_deep(span));
            }
            return Ok(Expr { kind: ExprKind::Cond(Box::new(cond), Box::new(yes), Box::new(no)), span, depth });
        }
        Ok(cond)
    }

    /// Left-associative binary operators by precedence climbing (1 = `||` ... 6 = `* / %`).
    fn binary(&mut self, min_prec: u8) -> PResult {
        fn operator(tok: &Tok) -> Option<(u8, BinOp)> {
            Some(match tok {
                Tok::Or => (1, BinOp::Or),
                Tok::And => (2, BinOp::And),
                Tok::Eq => (3, BinOp::Eq),
                Tok::Ne => (3, BinOp::Ne),
                Tok::Lt => (4, BinOp::Lt),
                Tok::Gt => (4, BinOp::Gt),
                Tok::Le => (4, BinOp::Le),
                Tok::Ge => (4, BinOp::Ge),
                Tok::Plus => (5, BinOp::Add),
                Tok::Minus => (5, BinOp::Sub),
                Tok::Mul => (6, BinOp::Mul),
                Tok::Div => (6, BinOp::Div),
                Tok::Mod => (6, BinOp::Mod),
                _ => return None,
            })
        }
        let mut lhs = self.unary()?;
        while let Some((prec, op)) = operator(&self.peek().tok).filter(|(p, _)| *p >= min_prec) {
            self.bump();
            self.enter()?;
            let rhs = self.binary(prec + 1);
            self.guard -= 1;
            let rhs = rhs?;
            let span = (lhs.span.0, rhs.span.1);
            let depth = lhs.depth.max(rhs.depth) + 1;
            if depth > MAX_NESTING_DEPTH {
                return Err(too_deep(span));
            }
            lhs = Expr { kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span, depth };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> PResult {
        let token = self.peek();
        let op = match token.tok {
            Tok::Minus => UnOp::Neg,
            Tok::Not => UnOp::Not,
            Tok::Empty => UnOp::Empty,
            _ => return self.postfix(),
        };
        self.bump();
        self.enter()?;
        let operand = self.unary();
        self.guard -= 1;
        let operand = operand?;
        let span = (token.span.0, operand.span.1);
        let depth = operand.depth + 1;
        if depth > MAX_NESTING_DEPTH {
            return Err(too_deep(span));
        }
        Ok(Expr { kind: ExprKind::Unary(op, Box::new(operand)), span, depth })
    }

    fn postfix(&mut self) -> PResult {
        let mut base = self.primary()?;
        loop {
            match self.peek().tok {
                Tok::Dot => {
                    self.bump();
                    let name_tok = self.bump();
                    let Tok::Ident(name) = &name_tok.tok else {
                        return Err(unexpected(name_tok));
                    };
                    if self.peek().tok == Tok::LParen {
                        let (args, end) = self.arguments()?;
                        let span = (base.span.0, end);
                        let mut children: Vec<&Expr> = args.iter().collect();
                        children.push(&base);
                        let depth = node(ExprKind::Null, span, &children)?.depth;
                        base = Expr { kind: ExprKind::Method(Box::new(base), name.clone(), args), span, depth };
                    } else {
                        let key = Expr { kind: ExprKind::Str(name.clone()), span: name_tok.span, depth: 1 };
                        let span = (base.span.0, name_tok.span.1);
                        let depth = node(ExprKind::Null, span, &[&base])?.depth;
                        base = Expr { kind: ExprKind::Index(Box::new(base), Box::new(key)), span, depth };
                    }
                }
                Tok::LBracket => {
                    self.bump();
                    let key = self.expression()?;
                    let close = self.expect(&Tok::RBracket)?;
                    let span = (base.span.0, close.span.1);
                    let depth = node(ExprKind::Null, span, &[&base, &key])?.depth;
                    base = Expr { kind: ExprKind::Index(Box::new(base), Box::new(key)), span, depth };
                }
                _ => return Ok(base),
            }
        }
    }

    /// `( expression (, expression)* )`; returns the arguments and the end of the `)`.
    fn arguments(&mut self) -> Result<(Vec<Expr>, usize), RuleDiagnostic> {
        self.expect(&Tok::LParen)?;
        let mut args = Vec::new();
        if let Some(close) = self.peek_at(0).filter(|t| t.tok == Tok::RParen) {
            self.bump();
            return Ok((args, close.span.1));
        }
        loop {
            args.push(self.expression()?);
            let token = self.bump();
            match token.tok {
                Tok::Comma => continue,
                Tok::RParen => return Ok((args, token.span.1)),
                _ => return Err(unexpected(token)),
            }
        }
    }

    fn primary(&mut self) -> PResult {
        let token = self.bump();
        let leaf = |kind| Ok(Expr { kind, span: token.span, depth: 1 });
        match &token.tok {
            Tok::Null => leaf(ExprKind::Null),
            Tok::True => leaf(ExprKind::Bool(true)),
            Tok::False => leaf(ExprKind::Bool(false)),
            Tok::Int(n) => leaf(ExprKind::Int(*n)),
            Tok::Float(f) => leaf(ExprKind::Float(*f)),
            Tok::Str(s) => leaf(ExprKind::Str(s.clone())),
            Tok::LParen => {
                let inner = self.expression()?;
                self.expect(&Tok::RParen)?;
                Ok(inner)
            }
            Tok::Ident(name) => {
                // `ns:name(` is a function call; so is `name(` (with no namespace).
                let is_ns_call = matches!(
                    (self.peek_at(0).map(|t| &t.tok), self.peek_at(1).map(|t| &t.tok), self.peek_at(2).map(|t| &t.tok)),
                    (Some(Tok::Colon), Some(Tok::Ident(_)), Some(Tok::LParen))
                );
                let (ns, fname) = if is_ns_call {
                    self.bump();
                    let Tok::Ident(fname) = &self.bump().tok else {
                        return Err(unexpected(token));
                    };
                    (name.clone(), fname.clone())
                } else if self.peek().tok == Tok::LParen {
                    (String::new(), name.clone())
                } else {
                    return leaf(ExprKind::Ident(name.clone()));
                };
                let (args, end) = self.arguments()?;
                let span = (token.span.0, end);
                let children: Vec<&Expr> = args.iter().collect();
                let depth = node(ExprKind::Null, span, &children)?.depth;
                Ok(Expr { kind: ExprKind::Call(ns, fname, args), span, depth })
            }
            _ => Err(unexpected(token)),
        }
    }
}
