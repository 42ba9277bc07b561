//! The EL 2.2 tokenizer for the inside of one `${...}`, and its inverse for literals (what
//! tools that write rules, such as the Python package's test utilities, quote values with).

use super::env::RuleDiagnostic;
use crate::value::Value;

/// One token kind. Keyword and symbol spellings of the same operator share a kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Int(i64),
    Float(f64),
    Str(String),
    True,
    False,
    Null,
    Empty,
    Not,
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Plus,
    Minus,
    Mul,
    Div,
    Mod,
    Dot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Question,
    Colon,
    Comma,
    /// The `}` that ends the expression.
    End,
}

/// A token and its byte span in the rule text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: (usize, usize),
}

fn syntax(message: String, span: (usize, usize)) -> RuleDiagnostic {
    RuleDiagnostic { code: "syntax_error", message, span: Some(span) }
}

/// The words EL reserves, with the token each one is; `instanceof` is reserved but not supported.
static RESERVED_WORDS: [(&str, Option<Tok>); 16] = [
    ("true", Some(Tok::True)),
    ("false", Some(Tok::False)),
    ("null", Some(Tok::Null)),
    ("empty", Some(Tok::Empty)),
    ("not", Some(Tok::Not)),
    ("and", Some(Tok::And)),
    ("or", Some(Tok::Or)),
    ("eq", Some(Tok::Eq)),
    ("ne", Some(Tok::Ne)),
    ("lt", Some(Tok::Lt)),
    ("gt", Some(Tok::Gt)),
    ("le", Some(Tok::Le)),
    ("ge", Some(Tok::Ge)),
    ("div", Some(Tok::Div)),
    ("mod", Some(Tok::Mod)),
    ("instanceof", None),
];

fn reserved(word: &str) -> Option<&'static Option<Tok>> {
    RESERVED_WORDS.iter().find(|(w, _)| *w == word).map(|(_, tok)| tok)
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn is_ident_part(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Whether a rule can read `name` as a variable: one identifier, and not a reserved word.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_ident_start) && chars.all(is_ident_part) && reserved(name).is_none()
}

/// A value as a rule literal that reads back as that value: `true`, `42`, `0.5`, `'it\'s'`
/// (strings quoted, with `\` and `'` escaped). `None` for values a literal cannot write: numbers
/// that are not finite, and anything but booleans, integers, doubles and strings.
pub fn literal(value: &Value) -> Option<String> {
    match value {
        Value::Bool(b) => Some(b.to_string()),
        // The smallest long has no literal: its magnitude does not fit a long, as in Java.
        Value::Int(i64::MIN, _) => Some(format!("({} - 1)", i64::MIN + 1)),
        Value::Int(n, _) => Some(n.to_string()),
        Value::Double(d) if d.is_finite() => Some(crate::java::double_to_string(*d)),
        Value::String(text) => {
            let mut out = String::with_capacity(text.len() + 2);
            out.push('\'');
            for c in text.chars() {
                if matches!(c, '\\' | '\'') {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('\'');
            Some(out)
        }
        _ => None,
    }
}

/// Tokenizes from byte `start` of `text` up to and including the `}` that ends the expression.
/// Returns the tokens (the last is [`Tok::End`]) and the byte offset just past that `}`.
pub(crate) fn lex(text: &str, start: usize) -> Result<(Vec<Token>, usize), RuleDiagnostic> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = start;
    loop {
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        let Some(c) = text[i..].chars().next() else {
            return Err(syntax("unterminated expression: missing '}'".to_string(), (start, text.len())));
        };
        let begin = i;
        let two = text.get(i..i + 2).unwrap_or("");
        let (tok, len) = match c {
            '}' => (Tok::End, 1),
            '0'..='9' => {
                let (tok, len) = lex_number(text, i)?;
                (tok, len)
            }
            '.' if text[i + 1..].starts_with(|d: char| d.is_ascii_digit()) => lex_number(text, i)?,
            '\'' | '"' => lex_string(text, i, c)?,
            c if is_ident_start(c) => {
                let len = text[i..].find(|ch: char| !is_ident_part(ch)).unwrap_or(text.len() - i);
                let word = &text[i..i + len];
                let tok = match reserved(word) {
                    Some(Some(tok)) => tok.clone(),
                    Some(None) => {
                        return Err(syntax(
                            format!("'{word}' is a reserved word and is not supported"),
                            (i, i + len),
                        ))
                    }
                    None => Tok::Ident(word.to_string()),
                };
                (tok, len)
            }
            _ => match two {
                "&&" => (Tok::And, 2),
                "||" => (Tok::Or, 2),
                "==" => (Tok::Eq, 2),
                "!=" => (Tok::Ne, 2),
                "<=" => (Tok::Le, 2),
                ">=" => (Tok::Ge, 2),
                _ => {
                    let tok = match c {
                        '<' => Tok::Lt,
                        '>' => Tok::Gt,
                        '!' => Tok::Not,
                        '+' => Tok::Plus,
                        '-' => Tok::Minus,
                        '*' => Tok::Mul,
                        '/' => Tok::Div,
                        '%' => Tok::Mod,
                        '.' => Tok::Dot,
                        '[' => Tok::LBracket,
                        ']' => Tok::RBracket,
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        '?' => Tok::Question,
                        ':' => Tok::Colon,
                        ',' => Tok::Comma,
                        _ => {
                            return Err(syntax(
                                format!("unexpected character '{c}'"),
                                (i, i + c.len_utf8()),
                            ))
                        }
                    };
                    (tok, 1)
                }
            },
        };
        i += len;
        let end = tok == Tok::End;
        tokens.push(Token { tok, span: (begin, i) });
        if end {
            return Ok((tokens, i));
        }
    }
}

/// Integer literals are Longs, literals with a point or an exponent Doubles.
fn lex_number(text: &str, start: usize) -> Result<(Tok, usize), RuleDiagnostic> {
    let bytes = text.as_bytes();
    let digits = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = digits(start);
    let mut float = false;
    if i < bytes.len() && bytes[i] == b'.' {
        float = true;
        i = digits(i + 1);
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let mut j = i + 1;
        if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
            j += 1;
        }
        let k = digits(j);
        if k > j {
            float = true;
            i = k;
        }
    }
    let image = &text[start..i];
    if float {
        let value = crate::java::parse_double(image).map_err(|_| {
            syntax(format!("malformed number '{image}'"), (start, i))
        })?;
        Ok((Tok::Float(value), i - start))
    } else {
        let value = crate::java::parse_long(image).map_err(|_| RuleDiagnostic {
            code: "number_too_large",
            message: format!("integer literal {image} does not fit in a Java long"),
            span: Some((start, i)),
        })?;
        Ok((Tok::Int(value), i - start))
    }
}

/// `'...'` or `"..."`; `\\`, `\'` and `\"` are escapes in either, and EL 2.2's grammar has no
/// other: a backslash before anything else is a syntax error (Tomcat 7's `STRING_LITERAL`).
fn lex_string(text: &str, start: usize, quote: char) -> Result<(Tok, usize), RuleDiagnostic> {
    let mut out = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        if c == quote {
            return Ok((Tok::Str(out), offset + 2));
        }
        if c == '\\' {
            let rest = &text[start + 1 + offset + 1..];
            match rest.chars().next() {
                Some(e @ ('\\' | '\'' | '"')) => {
                    out.push(e);
                    chars.next();
                }
                _ => {
                    let at = start + 1 + offset;
                    return Err(syntax(
                        "a backslash in a string may only escape \\, ' or \" (EL 2.2 has no other escape)".to_string(),
                        (at, at + 1),
                    ));
                }
            }
        } else {
            out.push(c);
        }
    }
    Err(syntax("unterminated string literal".to_string(), (start, text.len())))
}
