//! Spreadsheet-safe CSV cells: numbers stay numbers, missing or non-finite numbers are empty,
//! and text that a spreadsheet would run as a formula (leading `= + - @`, tab or CR) is
//! prefixed with `'` (the OWASP CSV-injection rule). Reading strips that prefix again.

/// One CSV cell before encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Num(Option<f64>),
    Int(Option<u64>),
    Bool(bool),
}

impl Cell {
    pub fn encode(&self) -> String {
        match self {
            Cell::Text(s) => escape_text(s),
            Cell::Num(Some(v)) if v.is_finite() => format_number(*v),
            Cell::Num(_) => String::new(),
            Cell::Int(Some(v)) => v.to_string(),
            Cell::Int(None) => String::new(),
            Cell::Bool(b) => b.to_string(),
        }
    }
}

/// Shortest round-trip text, never exponent-free garbage like `1e16` for spreadsheets that
/// parse it fine anyway; ryu's form (via `{}`) is what both Excel and LibreOffice read.
fn format_number(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A formula trigger: text starting with one of these is escaped.
fn is_trigger(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// True for `'`* followed by a trigger: the texts escaping changes (with no `'`: a formula
/// trigger; with some: text that would otherwise lose a `'` when read back).
fn quote_run_then_trigger(s: &str) -> bool {
    s.trim_start_matches('\'')
        .chars()
        .next()
        .is_some_and(is_trigger)
}

/// Neutralise formula triggers in a text cell. Text that already starts with `'` before a
/// trigger gets one more, so that [`unescape_text`] gives back exactly what was written.
pub fn escape_text(s: &str) -> String {
    if quote_run_then_trigger(s) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// Undo [`escape_text`] when reading our own files back.
pub fn unescape_text(s: &str) -> String {
    match s.strip_prefix('\'') {
        Some(rest) if quote_run_then_trigger(rest) => rest.to_string(),
        _ => s.to_string(),
    }
}

/// A row type with a fixed header.
pub trait CsvRow {
    fn header() -> &'static [&'static str];
    fn cells(&self) -> Vec<Cell>;
}

/// Encode rows (with the header when `header` is set) as CSV text.
pub fn encode<R: CsvRow>(rows: &[R], header: bool) -> String {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    if header {
        w.write_record(R::header()).expect("writing to memory");
    }
    for r in rows {
        let cells: Vec<String> = r.cells().iter().map(Cell::encode).collect();
        debug_assert_eq!(cells.len(), R::header().len());
        w.write_record(&cells).expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("flushing memory")).expect("CSV of UTF-8 cells")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_triggers_are_neutralised() {
        for s in ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            let e = escape_text(s);
            assert!(e.starts_with('\''), "{s:?}");
            assert_eq!(unescape_text(&e), s);
        }
        assert_eq!(escape_text("llvmpipe"), "llvmpipe");
        assert_eq!(unescape_text("'plain"), "'plain");
        // Text that starts with quotes before a trigger survives the round trip.
        for s in ["'=x", "''+1", "'plain", "'", "''", "'-"] {
            assert_eq!(unescape_text(&escape_text(s)), s, "{s:?}");
            assert!(!escape_text(s).starts_with(is_trigger));
        }
    }

    #[test]
    fn numbers_are_never_escaped_and_missing_is_empty() {
        assert_eq!(Cell::Num(Some(-1.5)).encode(), "-1.5");
        assert_eq!(Cell::Num(Some(1024.0)).encode(), "1024");
        assert_eq!(Cell::Num(Some(f64::NAN)).encode(), "");
        assert_eq!(Cell::Num(Some(f64::INFINITY)).encode(), "");
        assert_eq!(Cell::Num(None).encode(), "");
        assert_eq!(Cell::Int(Some(7)).encode(), "7");
        assert_eq!(Cell::Bool(true).encode(), "true");
    }
}
