//! `GET /metrics` read by a strict parser of the Prometheus text format
//! (version 0.0.4): `# HELP` and `# TYPE` lines, then samples
//! `name{label="value",…} value`; anything else fails the test.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::app::TestApp;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape.
#[derive(Debug, Default)]
pub struct Scrape {
    /// Family name → help text.
    pub help: HashMap<String, String>,
    /// Family name → `counter`, `gauge`, `histogram`, …
    pub types: HashMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parses `text`, panicking with the line on anything malformed, on a
    /// sample of a family without `# TYPE` before it, or on a histogram
    /// without its `+Inf` bucket, `_sum` and `_count`.
    pub fn parse(text: &str) -> Scrape {
        let mut scrape = Scrape::default();
        for (number, line) in text.lines().enumerate() {
            if let Err(why) = scrape.take_line(line) {
                panic!("line {}: {why}: {line:?}\n{text}", number + 1);
            }
        }
        for (name, kind) in &scrape.types {
            if kind == "histogram" {
                let inf = [("le", "+Inf")];
                for part in ["_count", "_sum"] {
                    assert!(
                        scrape.has(&format!("{name}{part}")),
                        "histogram {name} has no {part}\n{text}"
                    );
                }
                assert!(
                    scrape.value(&format!("{name}_bucket"), &inf).is_some(),
                    "histogram {name} has no +Inf bucket\n{text}"
                );
            }
        }
        scrape
    }

    fn take_line(&mut self, line: &str) -> Result<(), &'static str> {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            check_name(name)?;
            self.help.insert(name.to_owned(), help.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or("a TYPE line without a type")?;
            check_name(name)?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err("unknown type");
            }
            self.types.insert(name.to_owned(), kind.to_owned());
        } else if !line.is_empty() && !line.starts_with('#') {
            let sample = parse_sample(line)?;
            if self.family_of(&sample.name).is_none() {
                return Err("a sample of a family without a TYPE line before it");
            }
            self.samples.push(sample);
        }
        Ok(())
    }

    /// The family (TYPE name) a sample name belongs to.
    fn family_of(&self, sample: &str) -> Option<&str> {
        if self.types.contains_key(sample) {
            return self.types.get_key_value(sample).map(|(k, _)| k.as_str());
        }
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let base = sample.strip_suffix(suffix)?;
            let (name, kind) = self.types.get_key_value(base)?;
            (kind == "histogram" || kind == "summary").then_some(name.as_str())
        })
    }

    /// Whether some sample is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// The value of the sample `name` whose labels include `labels`
    /// (the first such; `None` when there is none).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    /// Like [`Scrape::value`], 0 when absent.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }
}

fn check_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err("not a metric name")
    }
}

fn parse_sample(line: &str) -> Result<Sample, &'static str> {
    let name_end = line.find(['{', ' ']).ok_or("a sample without a value")?;
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let mut fields = rest
        .strip_prefix(' ')
        .ok_or("no space before the value")?
        .split(' ');
    let value = match fields.next().ok_or("no value")? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        number => number.parse().map_err(|_| "the value is not a number")?,
    };
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| "the timestamp is not an integer")?;
    }
    if fields.next().is_some() {
        return Err("text after the timestamp");
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `a="x",b="y\"z"}` → the labels and what follows the `}`.
fn parse_labels(mut text: &str) -> Result<(BTreeMap<String, String>, &str), &'static str> {
    let mut labels = BTreeMap::new();
    loop {
        if let Some(after) = text.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (key, rest) = text.split_once("=\"").ok_or("a label without =\"")?;
        check_name(key).map_err(|_| "not a label name")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("an unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("a dangling escape")?.1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    _ => return Err("an unknown escape"),
                },
                (_, c) => value.push(c),
            }
        };
        if labels.insert(key.to_owned(), value).is_some() {
            return Err("a label twice");
        }
        text = &rest[end + 1..];
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

impl TestApp {
    /// `GET /metrics` (with `Authorization: Bearer key` when given): the
    /// status, the `Content-Type` and the body.
    pub async fn get_metrics(&self, key: Option<&str>) -> (u16, String, String) {
        let mut request = awc::Client::new().get(format!("http://127.0.0.1:{}/metrics", self.port));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let mut response = request.send().await.expect("metrics request");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.body().await.expect("metrics body");
        let body = String::from_utf8(body.to_vec()).expect("UTF-8 metrics");
        (response.status().as_u16(), content_type, body)
    }

    /// A scrape of `/metrics` that must answer 200 in the text format.
    pub async fn scrape(&self) -> Scrape {
        let (status, content_type, body) = self.get_metrics(None).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"),
            "{content_type}"
        );
        Scrape::parse(&body)
    }

    /// Scrapes until `holds` is true of a scrape (or fails after 10 s).
    pub async fn scrape_until(&self, what: &str, holds: impl Fn(&Scrape) -> bool) -> Scrape {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let scrape = self.scrape().await;
            if holds(&scrape) {
                return scrape;
            }
            assert!(Instant::now() < deadline, "never true: {what}\n{scrape:#?}");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
