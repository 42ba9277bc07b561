//! Pipet's `UserAgent` context type (`com.indeed.proctor.pipet.deploy.useragent.UserAgent`).
//!
//! Pipet parses the `User-Agent` header with bitwalker UserAgentUtils and wraps the result in a
//! bean whose properties rules read (`${userAgent.mobileDevice}`, `${userAgent.OS.family}`...).
//! This is an independent, table-driven classifier that reproduces the wrapper's semantics:
//!
//! * the device type is the operating system's (as in bitwalker, where it hangs off the OS enum);
//! * `OS` (VersionedOS) has the OS *group* name lower-cased as `family`, and a version only for
//!   iOS, Android and Windows Phone 7, parsed the way Pipet does (Android needs a dotted
//!   version: `Android 14;` gives an unknown version, exactly as in Pipet);
//! * `version` (UserAgentVersion) is the browser version with `-1` for unknown numbers.
//!
//! Enum-valued properties are the enum constant names as strings (EL compares enums to strings
//! by name); nested beans are maps.

use std::sync::LazyLock;

use regex::Regex;

/// bitwalker `DeviceType` constant names.
const COMPUTER: &str = "COMPUTER";
const MOBILE: &str = "MOBILE";
const TABLET: &str = "TABLET";
const GAME_CONSOLE: &str = "GAME_CONSOLE";
const DMR: &str = "DMR";
const UNKNOWN: &str = "UNKNOWN";

/// A bitwalker `OperatingSystem` constant: its name, its top-level group's name, its device type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Os {
    name: &'static str,
    group: &'static str,
    device: &'static str,
}

const UNKNOWN_OS: Os = Os { name: UNKNOWN, group: UNKNOWN, device: UNKNOWN };

/// What an operating-system rule yields.
#[derive(Clone, Copy)]
enum OsKind {
    Fixed(Os),
    /// Android: the constant depends on the version and on whether it is a tablet.
    Android,
}

const fn os(name: &'static str, group: &'static str, device: &'static str) -> OsKind {
    OsKind::Fixed(Os { name, group, device })
}

/// Ordered operating-system rules: (pattern, unless-pattern or "", result). First match wins.
const OS_TABLE: &[(&str, &str, OsKind)] = &[
    // Consoles and TVs first: they often also claim Windows, Android or Linux.
    (r"(?i)xbox", "", os("XBOX_OS", "WINDOWS", GAME_CONSOLE)),
    (r"(?i)playstation", "", os("PSP", "PSP", GAME_CONSOLE)),
    (r"(?i)nintendo|\bwii", "", os("WII", "WII", GAME_CONSOLE)),
    (r"(?i)\broku", "", os("ROKU", "ROKU", DMR)),
    (r"(?i)googletv|google tv|android tv|\bcrkey\b|\baft[a-z]{1,4} build", "", os("GOOGLE_TV", "GOOGLE_TV", DMR)),
    (r"(?i)smart-?tv|hbbtv|netcast|web0s|tizen[^;)]*\btv|apple ?tv|bravia", "", os("LINUX", "LINUX", DMR)),
    // Windows (phones before desktops: Windows Phone UAs also say Android and iPhone).
    (r"(?i)windows phone os 7", "", os("WINDOWS_MOBILE7", "WINDOWS", MOBILE)),
    (r"(?i)windows phone 10", "", os("WINDOWS_10_MOBILE", "WINDOWS", MOBILE)),
    (r"(?i)windows phone 8\.1", "", os("WINDOWS_PHONE8_1", "WINDOWS", MOBILE)),
    (r"(?i)windows phone 8", "", os("WINDOWS_PHONE8", "WINDOWS", MOBILE)),
    (r"(?i)windows phone|windows ce|windows mobile", "", os("WINDOWS_MOBILE", "WINDOWS", MOBILE)),
    (r"(?i)windows nt (?:10|6\.4)", "", os("WINDOWS_10", "WINDOWS", COMPUTER)),
    (r"(?i)windows nt 6\.3", "", os("WINDOWS_81", "WINDOWS", COMPUTER)),
    (r"(?i)windows nt 6\.2", "", os("WINDOWS_8", "WINDOWS", COMPUTER)),
    (r"(?i)windows nt 6\.1", "", os("WINDOWS_7", "WINDOWS", COMPUTER)),
    (r"(?i)windows nt 6", "", os("WINDOWS_VISTA", "WINDOWS", COMPUTER)),
    (r"(?i)windows nt 5\.0", "", os("WINDOWS_2000", "WINDOWS", COMPUTER)),
    (r"(?i)windows nt 5", "", os("WINDOWS_XP", "WINDOWS", COMPUTER)),
    (r"(?i)windows 98|win98", "", os("WINDOWS_98", "WINDOWS", COMPUTER)),
    (r"(?i)windows", "", os("WINDOWS", "WINDOWS", COMPUTER)),
    (r"(?i)android", r"(?i)ubuntu", OsKind::Android),
    (r"\bCrOS\b", "", os("CHROME_OS", "CHROME_OS", COMPUTER)),
    (r"(?i)\bwebos\b|hpwos", "", os("WEBOS", "WEBOS", MOBILE)),
    // Apple: bitwalker checks iPad, then iPhone, then iPod (an iPod touch says "iPhone OS").
    (r"iPad", "", os("MAC_OS_X_IPAD", "IOS", TABLET)),
    (r"iPhone", "", os("MAC_OS_X_IPHONE", "IOS", MOBILE)),
    (r"iPod", "", os("MAC_OS_X_IPOD", "IOS", MOBILE)),
    (r"(?i)like mac os x", "", os("IOS", "IOS", MOBILE)),
    (r"(?i)mac os x|macintosh", "", os("MAC_OS_X", "MAC_OS_X", COMPUTER)),
    (r"(?i)\bmac(?:_| os)", "", os("MAC_OS", "MAC_OS", COMPUTER)),
    (r"(?i)rim tablet os|playbook", "", os("BLACKBERRY_TABLET", "BLACKBERRY_TABLET", TABLET)),
    (r"(?i)blackberry|\bbb10\b", "", os("BLACKBERRY", "BLACKBERRY", MOBILE)),
    (r"(?i)symbian|series ?60", "", os("SYMBIAN", "SYMBIAN", MOBILE)),
    (r"(?i)kindle", "", os("KINDLE", "KINDLE", TABLET)),
    (r"(?i)ubuntu.*mobile|mobile.*ubuntu", "", os("UBUNTU_TOUCH_MOBILE", "LINUX", MOBILE)),
    (r"(?i)ubuntu", "", os("UBUNTU", "LINUX", COMPUTER)),
    (r"(?i)linux", "", os("LINUX", "LINUX", COMPUTER)),
    (r"(?i)sunos", "", os("SUN_OS", "SUN_OS", COMPUTER)),
    (r"(?i)mobile", "", os("UNKNOWN_MOBILE", "UNKNOWN_MOBILE", MOBILE)),
    (r"(?i)tablet", "", os("UNKNOWN_TABLET", "UNKNOWN_TABLET", TABLET)),
];

/// Browser names resolved after matching (from the matched version), not fixed by the rule.
const IE_BY_VERSION: &str = "IE*";
const IEMOBILE_BY_VERSION: &str = "IEMOBILE*";

/// A `(?:...)/` version: up to four dot-separated parts, like bitwalker's version patterns.
macro_rules! v {
    ($prefix:literal) => {
        concat!($prefix, r"(\d+(?:\.\w+){0,3})")
    };
}

/// Ordered browser rules: (pattern, unless-pattern or "", name, mobile name or "", mobile pattern).
/// Capture group 1 of the pattern, when present and matched, is the browser version.
const BROWSER_TABLE: &[(&str, &str, &str, &str, &str)] = &[
    (
        r"(?i)[a-z]bot[/\-]|\bbot\b|spider|crawler|slurp|mediapartners-google|web preview|bingpreview|facebookexternalhit|feedfetcher",
        "", "BOT", "", "",
    ),
    (v!(r"Opera Mini/"), "", "OPERA_MINI", "", ""),
    (v!(r"\bOPR/"), "", "OPERA", "OPERA_MOBILE", r"Mobile"),
    (v!(r"\bOPiOS/"), "", "OPERA_MOBILE", "", ""),
    (v!(r"Opera.*Version/"), "", "OPERA", "", ""),
    (v!(r"Opera[/ ]"), "", "OPERA", "", ""),
    (v!(r"\bEdg(?:e|A|iOS)?/"), "", "EDGE", "EDGE_MOBILE", r"EdgA/|EdgiOS/|Mobile"),
    (v!(r"SamsungBrowser/"), "", "SAMSUNG_BROWSER", "", ""),
    (v!(r"UC ?Browser/"), "", "UC_BROWSER", "", ""),
    (r"(?i)ucweb", "", "UC_BROWSER", "", ""),
    (v!(r"\bSilk/"), "", "SILK", "", ""),
    (v!(r"Vivaldi/"), "", "VIVALDI", "", ""),
    (v!(r"IEMobile[/ ]"), "", IEMOBILE_BY_VERSION, "", ""),
    (v!(r"Trident/7\.0.*rv:"), r"MSIE 7", "IE11", "", ""),
    (v!(r"MSIE "), "", IE_BY_VERSION, "", ""),
    (r"Trident/", "", "IE", "", ""),
    (v!(r"FxiOS/"), "", "FIREFOX_MOBILE", "", ""),
    (v!(r"Firefox/"), "", "FIREFOX", "FIREFOX_MOBILE", r"Mobile"),
    (v!(r"(?:CriOS|CrMo)/"), "", "CHROME_MOBILE", "", ""),
    // Android WebView ("; wv)") is reported as Chrome, as bitwalker does.
    (v!(r"(?:Chrome|Chromium)/"), "", "CHROME", "CHROME_MOBILE", r"Mobile Safari|; wv\)"),
    (v!(r"Version/"), r"(?i)cfnetwork", "SAFARI", "MOBILE_SAFARI", r"Mobile Safari|Mobile/"),
    (r"Safari", r"(?i)cfnetwork", "SAFARI", "MOBILE_SAFARI", r"Mobile Safari|Mobile/"),
    (r"AppleWebKit", "", "APPLE_WEB_KIT", "", ""),
    (r"^Mozilla/", "", "MOZILLA", "", ""),
];

struct OsRule {
    re: Regex,
    unless: Option<Regex>,
    kind: OsKind,
}

struct BrowserRule {
    re: Regex,
    unless: Option<Regex>,
    name: &'static str,
    mobile: Option<(&'static str, Regex)>,
}

/// Compiles a pattern; an empty pattern (or, defensively, an invalid one) is `None`.
///
/// `\b` is ASCII, as Java's is without `UNICODE_CHARACTER_CLASS`: the `regex` crate's Unicode
/// `\b` makes its DFA give up on any non-ASCII byte and simulate the NFA instead, which made a
/// long header with one such byte cost a third of a second (found by fuzzing, `fuzz/corpus/schema/`).
fn compile(pattern: &str) -> Option<Regex> {
    if pattern.is_empty() {
        None
    } else {
        Regex::new(&pattern.replace(r"\b", r"(?-u:\b)")).ok()
    }
}

/// How much of a header is classified: real user agents are a few hundred bytes, and a longer
/// header costs every pattern a scan on every request (the whole text stays `userAgentString`).
const CLASSIFIED_BYTES: usize = 4096;

/// The part of a header that is classified.
fn classified(text: &str) -> &str {
    if text.len() <= CLASSIFIED_BYTES {
        return text;
    }
    let mut end = CLASSIFIED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

static OS_RULES: LazyLock<Vec<OsRule>> = LazyLock::new(|| {
    OS_TABLE
        .iter()
        .filter_map(|&(re, unless, kind)| Some(OsRule { re: compile(re)?, unless: compile(unless), kind }))
        .collect()
});

static BROWSER_RULES: LazyLock<Vec<BrowserRule>> = LazyLock::new(|| {
    BROWSER_TABLE
        .iter()
        .filter_map(|&(re, unless, name, mobile_name, mobile_re)| {
            let mobile = if mobile_name.is_empty() { None } else { compile(mobile_re).map(|r| (mobile_name, r)) };
            Some(BrowserRule { re: compile(re)?, unless: compile(unless), name, mobile })
        })
        .collect()
});

static ANDROID_MAJOR: LazyLock<Option<Regex>> = LazyLock::new(|| compile(r"(?i)android[ /-]?(\d+)"));
static ANDROID_TABLET_HINT: LazyLock<Option<Regex>> =
    LazyLock::new(|| compile(r"(?i)tablet|kindle|\bsilk/|\bkf[a-z]{2,6} build|nexus (?:7|9|10)\b"));
/// Pipet's VersionedOS pattern: a dotted version is required.
static ANDROID_OS_VERSION: LazyLock<Option<Regex>> = LazyLock::new(|| compile(r"Android (\d+(?:\.\d+)+)"));

fn matches(re: &Option<Regex>, text: &str) -> bool {
    re.as_ref().is_some_and(|r| r.is_match(text))
}

/// bitwalker's versioned Android constants by major version: (phone, tablet), "" for none.
const ANDROID_NAMES: [(&str, &str); 9] = [
    ("", ""),
    ("ANDROID1", ""),
    ("ANDROID2", "ANDROID2_TABLET"),
    ("ANDROID3_TABLET", "ANDROID3_TABLET"),
    ("ANDROID4", "ANDROID4_TABLET"),
    ("ANDROID5", "ANDROID5_TABLET"),
    ("ANDROID6", "ANDROID6_TABLET"),
    ("ANDROID7", "ANDROID7_TABLET"),
    ("ANDROID8", "ANDROID8_TABLET"),
];

fn classify_android(text: &str) -> Os {
    let major = ANDROID_MAJOR
        .as_ref()
        .and_then(|r| r.captures(text))
        .and_then(|c| c.get(1))
        .and_then(|m| m.as_str().parse::<usize>().ok())
        .unwrap_or(0);
    let tablet = matches(&ANDROID_TABLET_HINT, text) || !text.to_ascii_lowercase().contains("mobile");
    let (phone_name, tablet_name) = ANDROID_NAMES.get(major).copied().unwrap_or(("", ""));
    let name = match (tablet, if tablet { tablet_name } else { phone_name }) {
        (true, "") => "ANDROID_TABLET",
        (false, "") => "ANDROID_MOBILE",
        (_, name) => name,
    };
    let device = if tablet || major == 3 { TABLET } else { MOBILE };
    Os { name, group: "ANDROID", device }
}

fn classify_os(text: &str) -> Os {
    for rule in OS_RULES.iter() {
        if rule.re.is_match(text) && !matches(&rule.unless, text) {
            return match rule.kind {
                OsKind::Fixed(os) => os,
                OsKind::Android => classify_android(text),
            };
        }
    }
    UNKNOWN_OS
}

/// A bitwalker `Version` bean: the full version and its first two parts, as strings.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BrowserVersion {
    version: String,
    major: String,
    minor: Option<String>,
}

impl BrowserVersion {
    fn parse(version: &str) -> BrowserVersion {
        let mut parts = version.split('.');
        BrowserVersion {
            version: version.to_string(),
            major: parts.next().unwrap_or_default().to_string(),
            minor: parts.next().map(str::to_string),
        }
    }
}

/// bitwalker's versioned IE constants, by major version.
fn ie_name(mobile: bool, version: Option<&BrowserVersion>) -> &'static str {
    const DESKTOP_NAMES: [&str; 11] = ["", "", "", "", "", "IE5", "IE6", "IE7", "IE8", "IE9", "IE10"];
    const MOBILE_NAMES: [&str; 12] =
        ["", "", "", "", "", "", "IEMOBILE6", "IEMOBILE7", "", "IEMOBILE9", "IEMOBILE10", "IEMOBILE11"];
    let major = version.and_then(|v| v.major.parse::<usize>().ok()).unwrap_or(0);
    let five_five = !mobile && major == 5 && version.and_then(|v| v.minor.as_deref()) == Some("5");
    let name = if mobile { MOBILE_NAMES.get(major) } else { DESKTOP_NAMES.get(major) };
    match name.copied() {
        _ if five_five => "IE5_5",
        Some("") | None => "IE",
        Some(name) => name,
    }
}

fn classify_browser(text: &str) -> (&'static str, Option<BrowserVersion>) {
    for rule in BROWSER_RULES.iter() {
        let Some(caps) = rule.re.captures(text) else { continue };
        if matches(&rule.unless, text) {
            continue;
        }
        let version = caps.get(1).map(|m| BrowserVersion::parse(m.as_str()));
        let name = match rule.name {
            IE_BY_VERSION => ie_name(false, version.as_ref()),
            IEMOBILE_BY_VERSION => ie_name(true, version.as_ref()),
            _ => match &rule.mobile {
                Some((mobile_name, re)) if re.is_match(text) => mobile_name,
                _ => rule.name,
            },
        };
        return (name, version);
    }
    (UNKNOWN, None)
}

/// A version string and its first two numeric parts (`-1` when absent or not an int).
#[derive(Debug, Clone, PartialEq, Eq)]
struct NumberedVersion {
    version: String,
    major: i32,
    minor: i32,
}

impl NumberedVersion {
    const UNKNOWN: NumberedVersion = NumberedVersion { version: String::new(), major: -1, minor: -1 };

    fn new(version: &str, major: Option<&str>, minor: Option<&str>) -> NumberedVersion {
        let int = |s: Option<&str>| s.and_then(|s| s.parse::<i32>().ok()).unwrap_or(-1);
        NumberedVersion { version: version.to_string(), major: int(major), minor: int(minor) }
    }

    /// Pipet's `parseOsVersion`: split on '.', major and minor are the first two parts.
    fn from_os_version(version: Option<String>) -> NumberedVersion {
        match version {
            Some(v) if !v.is_empty() => {
                let mut parts = v.split('.');
                let (major, minor) = (parts.next(), parts.next());
                NumberedVersion::new(&v, major, minor)
            }
            _ => NumberedVersion::UNKNOWN,
        }
    }
}

/// Pipet's iOS / Windows Phone version scan: after the first "OS ", digits up to `stop`.
fn version_after_os(text: &str, stop: char) -> Option<String> {
    let rest = &text[text.find("OS ")? + 3..];
    if !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some(rest.split(stop).next().unwrap_or_default().to_string())
}

/// The bean's properties (EL names), in Pipet's getter order.
const PROPERTIES: [&str; 16] = [
    "browser", "browserVersion", "version", "operatingSystem", "OS", "deviceType", "userAgentString",
    "tablet", "IOS", "chromeForIOS", "android", "windowsPhone", "mobileDevice", "smartPhone", "phone",
    "dumbPhone",
];

/// A parsed `User-Agent` header.
#[derive(Debug, Clone, PartialEq)]
pub struct UserAgent {
    text: String,
    os: Os,
    os_version: NumberedVersion,
    browser: &'static str,
    browser_version: Option<BrowserVersion>,
}

impl UserAgent {
    /// Parses a `User-Agent` header leniently (never fails).
    pub fn parse(header: &str) -> UserAgent {
        let text = classified(header);
        let (browser, browser_version) = classify_browser(text);
        let mut ua = UserAgent {
            text: header.to_string(),
            os: classify_os(text),
            os_version: NumberedVersion::UNKNOWN,
            browser,
            browser_version,
        };
        ua.os_version = if ua.is_ios() {
            NumberedVersion::from_os_version(version_after_os(text, ' ').map(|v| v.replace('_', ".")))
        } else if ua.is_android() {
            let found = ANDROID_OS_VERSION.as_ref().and_then(|r| r.captures(text)).and_then(|c| c.get(1));
            NumberedVersion::from_os_version(found.map(|m| m.as_str().to_string()))
        } else if ua.is_windows_phone() {
            NumberedVersion::from_os_version(version_after_os(text, ';'))
        } else {
            NumberedVersion::UNKNOWN
        };
        ua
    }

    /// The raw header.
    pub fn user_agent_string(&self) -> &str {
        &self.text
    }

    fn is_tablet(&self) -> bool {
        let text = classified(&self.text);
        self.os.device == TABLET || text.contains("Nexus 7") || text.contains("Kindle Fire")
    }

    fn os_is_mobile(&self) -> bool {
        self.os.device == MOBILE
    }

    fn is_mobile_device(&self) -> bool {
        self.os_is_mobile() || self.is_tablet()
    }

    fn is_ios(&self) -> bool {
        self.is_mobile_device() && self.os.group == "IOS"
    }

    fn is_android(&self) -> bool {
        self.os.group == "ANDROID"
    }

    fn is_windows_phone(&self) -> bool {
        self.os.name == "WINDOWS_MOBILE7"
    }

    fn is_smart_phone(&self) -> bool {
        self.is_mobile_device() && (self.os.group == "IOS" || self.is_android() || self.is_windows_phone())
    }

    fn is_phone(&self) -> bool {
        self.os_is_mobile() && !self.is_tablet()
    }

    /// `getBrowserVersion()`: a bitwalker `Version` (all null when unknown).
    fn browser_version_bean(&self) -> Property {
        let opt = |s: Option<&str>| s.map_or(Property::Null, |s| Property::Text(s.to_string()));
        let v = self.browser_version.as_ref();
        Property::Bean(vec![
            ("version", opt(v.map(|v| v.version.as_str()))),
            ("majorVersion", opt(v.map(|v| v.major.as_str()))),
            ("minorVersion", opt(v.and_then(|v| v.minor.as_deref()))),
        ])
    }

    /// `getVersion()`: a `UserAgentVersion`.
    fn version_bean(&self) -> Property {
        let v = match &self.browser_version {
            Some(b) => NumberedVersion::new(&b.version, Some(&b.major), b.minor.as_deref()),
            None => NumberedVersion::UNKNOWN,
        };
        Property::Bean(vec![
            ("version", Property::Text(v.version)),
            ("major", Property::Int(v.major)),
            ("minor", Property::Int(v.minor)),
        ])
    }

    /// `getOS()`: a `VersionedOS`.
    fn os_bean(&self) -> Property {
        let v = &self.os_version;
        Property::Bean(vec![
            ("family", Property::Text(self.os.group.to_ascii_lowercase())),
            ("version", Property::Text(v.version.clone())),
            ("majorVersion", Property::Int(v.major)),
            ("minorVersion", Property::Int(v.minor)),
        ])
    }

    /// A bean property (`userAgent.browser`, `userAgent.mobileDevice`, ...), or `None` if unknown.
    ///
    /// Names are the EL (`java.beans.Introspector`) ones: `getOS()` is `OS` and `isIOS()` is `IOS`.
    pub fn property(&self, name: &str) -> Option<Property> {
        let text = |s: &str| Property::Text(s.to_string());
        Some(match name {
            "browser" => text(self.browser),
            "browserVersion" => self.browser_version_bean(),
            "version" => self.version_bean(),
            "operatingSystem" => text(self.os.name),
            "OS" => self.os_bean(),
            "deviceType" => text(self.os.device),
            "userAgentString" => text(&self.text),
            "tablet" => Property::Flag(self.is_tablet()),
            "IOS" => Property::Flag(self.is_ios()),
            "chromeForIOS" => Property::Flag(self.is_ios() && classified(&self.text).contains("CriOS")),
            "android" => Property::Flag(self.is_android()),
            "windowsPhone" => Property::Flag(self.is_windows_phone()),
            "mobileDevice" => Property::Flag(self.is_mobile_device()),
            "smartPhone" => Property::Flag(self.is_smart_phone()),
            "phone" => Property::Flag(self.is_phone()),
            "dumbPhone" => Property::Flag(self.is_phone() && !self.is_smart_phone()),
            _ => return None,
        })
    }

    /// The bean as Pipet's Jackson mapper writes it (Jackson names `getOS()` `os`, `isIOS()` `ios`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for name in PROPERTIES {
            let value = self.property(name).map_or(serde_json::Value::Null, |v| v.to_json());
            // Jackson lower-cases a getter's leading capitals where Introspector keeps them.
            let json_name = if name.chars().all(|c| c.is_ascii_uppercase()) { name.to_ascii_lowercase() } else { name.to_string() };
            out.insert(json_name, value);
        }
        serde_json::Value::Object(out)
    }
}

/// A property of the `UserAgent` bean in plain types; rules see it as a `crate::value::Value`
/// (enum constants as strings, nested beans as maps, numbers as Java ints).
#[derive(Debug, Clone, PartialEq)]
pub enum Property {
    /// A Java null.
    Null,
    /// A string, or an enum constant's name.
    Text(String),
    /// A boolean getter (`isTablet()`).
    Flag(bool),
    /// A Java `int`.
    Int(i32),
    /// A nested bean: its properties in declaration order.
    Bean(Vec<(&'static str, Property)>),
}

impl Property {
    /// The property as JSON, as Jackson writes it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Property::Null => serde_json::Value::Null,
            Property::Text(s) => serde_json::Value::from(s.as_str()),
            Property::Flag(b) => serde_json::Value::Bool(*b),
            Property::Int(n) => serde_json::Value::from(*n),
            Property::Bean(props) => {
                serde_json::Value::Object(props.iter().map(|(k, v)| ((*k).to_string(), v.to_json())).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value as J};

    /// (user agent; browser, operatingSystem, deviceType, OS.family, OS.version, version.major,
    /// true flags: t=tablet i=IOS c=chromeForIOS a=android w=windowsPhone m=mobileDevice
    /// s=smartPhone p=phone d=dumbPhone).
    #[rustfmt::skip]
    const CASES: &[(&str, [&str; 5], i64, &str)] = &[
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            ["CHROME", "WINDOWS_10", "COMPUTER", "windows", ""], 120, ""),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
            ["CHROME", "MAC_OS_X", "COMPUTER", "mac_os_x", ""], 119, ""),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
            ["SAFARI", "MAC_OS_X", "COMPUTER", "mac_os_x", ""], 17, ""),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            ["FIREFOX", "LINUX", "COMPUTER", "linux", ""], 121, ""),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
            ["EDGE", "WINDOWS_10", "COMPUTER", "windows", ""], 120, ""),
        ("Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
            ["IE11", "WINDOWS_7", "COMPUTER", "windows", ""], 11, ""),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
            ["OPERA", "WINDOWS_10", "COMPUTER", "windows", ""], 106, ""),
        ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            ["CHROME", "CHROME_OS", "COMPUTER", "chrome_os", ""], 120, ""),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
            ["MOBILE_SAFARI", "MAC_OS_X_IPHONE", "MOBILE", "ios", "17.1.2"], 17, "imsp"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
            ["CHROME_MOBILE", "MAC_OS_X_IPHONE", "MOBILE", "ios", "17.1"], 120, "icmsp"),
        // Pipet counts an iPad as a smart phone (a mobile device on iOS), not as a phone.
        ("Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
            ["MOBILE_SAFARI", "MAC_OS_X_IPAD", "TABLET", "ios", "17.1"], 17, "tims"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/121.0 Mobile/15E148 Safari/605.1.15",
            ["FIREFOX_MOBILE", "MAC_OS_X_IPHONE", "MOBILE", "ios", "17.1"], 121, "imsp"),
        // Pipet's VersionedOS wants a dotted Android version: "Android 14" gives an unknown one.
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
            ["CHROME_MOBILE", "ANDROID_MOBILE", "MOBILE", "android", ""], 120, "amsp"),
        ("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
            ["SAMSUNG_BROWSER", "ANDROID_MOBILE", "MOBILE", "android", ""], 23, "amsp"),
        ("Mozilla/5.0 (Linux; Android 7.1.2; Moto G (5)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 Mobile Safari/537.36",
            ["CHROME_MOBILE", "ANDROID7", "MOBILE", "android", "7.1.2"], 99, "amsp"),
        ("Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
            ["FIREFOX_MOBILE", "ANDROID_MOBILE", "MOBILE", "android", ""], 121, "amsp"),
        ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            ["CHROME", "ANDROID_TABLET", "TABLET", "android", ""], 120, "tams"),
        ("Mozilla/5.0 (Linux; U; Android 2.3.4; en-us; Kindle Fire Build/GINGERBREAD) AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1",
            ["MOBILE_SAFARI", "ANDROID2_TABLET", "TABLET", "android", "2.3.4"], 4, "tams"),
        ("Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/120.4.1 like Chrome/120.0.6099.230 Safari/537.36",
            ["SILK", "ANDROID_TABLET", "TABLET", "android", ""], 120, "tams"),
        ("Mozilla/5.0 (compatible; MSIE 9.0; Windows Phone OS 7.5; Trident/5.0; IEMobile/9.0; NOKIA; Lumia 800)",
            ["IEMOBILE9", "WINDOWS_MOBILE7", "MOBILE", "windows", "7.5"], 9, "wmsp"),
        ("Nokia6300/2.0 (05.00) Profile/MIDP-2.0 Configuration/CLDC-1.1 Mobile",
            ["UNKNOWN", "UNKNOWN_MOBILE", "MOBILE", "unknown_mobile", ""], -1, "mpd"),
        ("Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15",
            ["SAFARI", "PSP", "GAME_CONSOLE", "psp", ""], 13, ""),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edge/44.18363.8131",
            ["EDGE", "XBOX_OS", "GAME_CONSOLE", "windows", ""], 44, ""),
        ("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 69.0.3497.106/6.0 TV Safari/537.36",
            ["SAFARI", "LINUX", "DMR", "linux", ""], -1, ""),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            ["BOT", "UNKNOWN", "UNKNOWN", "unknown", ""], -1, ""),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            ["BOT", "UNKNOWN", "UNKNOWN", "unknown", ""], -1, ""),
        ("", ["UNKNOWN", "UNKNOWN", "UNKNOWN", "unknown", ""], -1, ""),
        ("garbage \u{1F4A9} \u{0} OS ", ["UNKNOWN", "UNKNOWN", "UNKNOWN", "unknown", ""], -1, ""),
        ("(;;;)///Android Mobile OS 1", ["UNKNOWN", "ANDROID_MOBILE", "MOBILE", "android", ""], -1, "amsp"),
    ];

    fn p(ua: &UserAgent, name: &str) -> J {
        ua.property(name).map_or(J::Null, |v| v.to_json())
    }

    #[test]
    fn classifies_real_user_agents() {
        let flag_names = [
            ('t', "tablet"), ('i', "IOS"), ('c', "chromeForIOS"), ('a', "android"), ('w', "windowsPhone"),
            ('m', "mobileDevice"), ('s', "smartPhone"), ('p', "phone"), ('d', "dumbPhone"),
        ];
        for &(text, [browser, os, device, family, os_version], major, flags) in CASES {
            let ua = UserAgent::parse(text);
            let os_bean = p(&ua, "OS");
            let actual = [p(&ua, "browser"), p(&ua, "operatingSystem"), p(&ua, "deviceType")];
            assert_eq!(actual, [json!(browser), json!(os), json!(device)], "{text}");
            assert_eq!([&os_bean["family"], &os_bean["version"]], [&json!(family), &json!(os_version)], "{text}");
            assert_eq!(p(&ua, "version")["major"], json!(major), "{text}");
            for (code, name) in flag_names {
                assert_eq!(p(&ua, name), json!(flags.contains(code)), "{name} of {text}");
            }
            assert_eq!(p(&ua, "userAgentString"), json!(text));
        }
    }

    #[test]
    fn every_pattern_compiles() {
        assert_eq!((OS_RULES.len(), BROWSER_RULES.len()), (OS_TABLE.len(), BROWSER_TABLE.len()));
        let extra = OS_TABLE.iter().map(|r| r.1).chain(BROWSER_TABLE.iter().flat_map(|r| [r.1, r.4]));
        assert!(extra.filter(|p| !p.is_empty()).all(|p| Regex::new(p).is_ok()));
        assert!(ANDROID_MAJOR.is_some() && ANDROID_TABLET_HINT.is_some() && ANDROID_OS_VERSION.is_some());
    }

    #[test]
    fn nested_beans() {
        let ua = UserAgent::parse(CASES[8].0);
        assert_eq!(p(&ua, "OS"), json!({"family": "ios", "version": "17.1.2", "majorVersion": 17, "minorVersion": 1}));
        assert_eq!(p(&ua, "version"), json!({"version": "17.1.2", "major": 17, "minor": 1}));
        let bv = json!({"version": "17.1.2", "majorVersion": "17", "minorVersion": "1"});
        assert_eq!(p(&ua, "browserVersion"), bv);
        assert!(matches!(ua.property("OS"), Some(Property::Bean(props))
            if props.iter().any(|(k, v)| *k == "majorVersion" && *v == Property::Int(17))));
        let ua = UserAgent::parse(CASES[0].0);
        assert_eq!(p(&ua, "OS"), json!({"family": "windows", "version": "", "majorVersion": -1, "minorVersion": -1}));
        assert_eq!(p(&ua, "version"), json!({"version": "120.0.0.0", "major": 120, "minor": 0}));
        let ua = UserAgent::parse("");
        assert_eq!(p(&ua, "version"), json!({"version": "", "major": -1, "minor": -1}));
        assert_eq!(p(&ua, "browserVersion"), json!({"version": null, "majorVersion": null, "minorVersion": null}));
    }

    #[test]
    fn property_names_and_json() {
        let ua = UserAgent::parse(CASES[9].0);
        // EL (Introspector) names are OS and IOS; the lower-case names are not properties.
        assert!(ua.property("os").is_none() && ua.property("ios").is_none() && ua.property("nope").is_none());
        assert_eq!(ua.property("IOS"), Some(Property::Flag(true)));
        let json = ua.to_json();
        let keys: Vec<&str> = json.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        assert_eq!(keys.len(), 16);
        assert!(keys.contains(&"os") && keys.contains(&"ios") && !keys.contains(&"OS"));
        assert_eq!([&json["ios"], &json["chromeForIOS"]], [&json!(true), &json!(true)]);
        assert_eq!(json["os"]["version"], json!("17.1"));
        assert_eq!(json["browserVersion"]["majorVersion"], json!("120"));
        assert_eq!(json["operatingSystem"], json!("MAC_OS_X_IPHONE"));
    }

    #[test]
    fn a_long_header_costs_no_more_than_its_classified_part() {
        let real = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0 Mobile/15E148 Safari/604.1 ";
        let long = format!("{real}{}", "é Key\":Cha]USER ".repeat(20_000));
        let started = std::time::Instant::now();
        let ua = UserAgent::parse(&long);
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
        assert_eq!(ua.user_agent_string(), long);
        assert_eq!(ua.to_json()["operatingSystem"], UserAgent::parse(classified(&long)).to_json()["operatingSystem"]);
        assert!(matches!(ua.property("chromeForIOS"), Some(Property::Flag(true))));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,80}", tail in "(OS |Android |MSIE |Version/|iPhone|Mobile)?[0-9._ ;]{0,6}") {
            let text = format!("{text}{tail}");
            let ua = UserAgent::parse(&text);
            let _ = ua.to_json();
            proptest::prop_assert_eq!(ua.user_agent_string(), text.as_str());
        }
    }
}
