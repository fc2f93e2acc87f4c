//! Writing lines to stdout and stderr. A closed pipe (`gnt-job list | head`)
//! ends the program quietly with exit code 1, as Ganeti's CLI does.

use std::io::Write;

/// Writes one line to stdout.
pub fn out(line: &str) {
    let mut o = std::io::stdout().lock();
    if writeln!(o, "{line}").and_then(|_| o.flush()).is_err() {
        std::process::exit(crate::error::exit::FAILURE);
    }
}

/// Writes lines to stdout with one flush at the end (a listing of
/// thousands of rows is one write per buffer, not one per line).
pub fn out_lines<I>(lines: I)
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut o = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    for line in lines {
        if writeln!(o, "{}", line.as_ref()).is_err() {
            std::process::exit(crate::error::exit::FAILURE);
        }
    }
    if o.flush().is_err() {
        std::process::exit(crate::error::exit::FAILURE);
    }
}

/// Writes one line to stderr.
pub fn err(line: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}").and_then(|_| e.flush());
}

/// Asks a yes/no question on the terminal; without a terminal the answer
/// is "no", as Ganeti's `AskUser` returns its last choice.
pub fn ask_user(text: &str) -> bool {
    use std::io::BufRead;
    let Ok(tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return false;
    };
    let Ok(mut w) = tty.try_clone() else {
        return false;
    };
    let mut r = std::io::BufReader::new(tty);
    loop {
        if write!(w, "{text}\ny/[n]/?: ")
            .and_then(|_| w.flush())
            .is_err()
        {
            return false;
        }
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        match line.trim().to_lowercase().as_str() {
            "y" => return true,
            "n" => return false,
            "?" => {
                let _ = writeln!(
                    w,
                    " y - Perform the operation\n n - Do not perform the operation\n"
                );
            }
            _ => {}
        }
    }
}

/// Ganeti's `ConfirmOperation`: asks before acting on several items.
pub fn confirm_operation(names: &[String], list_type: &str, text: &str, extra: &str) -> bool {
    let mut q = format!(
        "The {text} will operate on {} {list_type}.\n{extra}Do you want to continue?",
        names.len()
    );
    if names.len() <= 20 {
        q.push_str(&format!("\nAffected {list_type}:\n"));
        let lines: Vec<String> = names.iter().map(|n| format!("  {n}")).collect();
        q.push_str(&lines.join("\n"));
    }
    ask_user(&q)
}

/// An I/O error as Python prints it: `[Errno 2] No such file or directory: 'f'`.
pub fn python_io_error(e: &std::io::Error, path: &str) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    match e.raw_os_error() {
        Some(code) => format!("[Errno {code}] {text}: '{path}'"),
        None => format!("{text}: '{path}'"),
    }
}
