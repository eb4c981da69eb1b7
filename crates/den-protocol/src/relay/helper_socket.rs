//! The socket a credential helper asks on, served on the far side: by the
//! container's `den agent credentials-server` and by the clone relay on a
//! machine. A helper connects, writes its operation on the first line and
//! git's helper input after it, and closes its writing half; the question
//! goes to den, and den's [`CredentialAnswer`] comes back on the same
//! connection.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{CredentialAnswer, CredentialRequest};

/// How long a helper may take to say what it asks.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a helper waits for den's answer: a client that never answers
/// must not hold git forever.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// The questions asked and not yet answered, by id.
#[derive(Clone, Default)]
pub struct Pending(Arc<Mutex<HashMap<u64, mpsc::Sender<String>>>>);

impl Pending {
    /// den's answer goes to the helper that asked (none: it gave up).
    pub fn answer(&self, a: CredentialAnswer) {
        if let Some(tx) = self.take(a.id) {
            let _ = tx.send(a.output);
        }
    }

    fn ask(&self, id: u64) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel();
        self.0.lock().expect("not poisoned").insert(id, tx);
        rx
    }

    fn take(&self, id: u64) -> Option<mpsc::Sender<String>> {
        self.0.lock().expect("not poisoned").remove(&id)
    }
}

/// Serves helper connections on `listener`: each one's question goes out
/// through `emit`, and the answer that [`Pending::answer`] gets for it goes
/// back (nothing after a minute).
pub fn serve(listener: UnixListener, pending: Pending, emit: impl Fn(&CredentialRequest) + Send + Sync + 'static) {
    serve_until(listener, pending, Arc::new(AtomicBool::new(false)), emit)
}

/// [`serve`] until `stop` is set: the connection that comes next (one the
/// stopper makes, to wake the accept) ends it.
pub fn serve_until(
    listener: UnixListener,
    pending: Pending,
    stop: Arc<AtomicBool>,
    emit: impl Fn(&CredentialRequest) + Send + Sync + 'static,
) {
    let emit = Arc::new(emit);
    let mut next = 0u64;
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut conn) = conn else { continue };
        next += 1;
        let id = next;
        let rx = pending.ask(id);
        let (pending, emit) = (pending.clone(), emit.clone());
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = conn.set_read_timeout(Some(READ_TIMEOUT));
            if conn.read_to_string(&mut text).is_err() {
                pending.take(id);
                return;
            }
            let (op, input) = text.split_once('\n').unwrap_or((text.as_str(), ""));
            emit(&CredentialRequest { id, op: op.trim().to_string(), input: input.to_string() });
            if let Ok(answer) = rx.recv_timeout(ANSWER_TIMEOUT) {
                let _ = conn.write_all(answer.as_bytes());
            }
            pending.take(id);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_question_goes_out_and_its_answer_comes_back() {
        let dir = std::env::temp_dir().join(format!("den-helper-socket-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let pending = Pending::default();
        let (asked, questions) = mpsc::channel();
        {
            let pending = pending.clone();
            let asked = Mutex::new(asked);
            std::thread::spawn(move || {
                serve(listener, pending, move |q| asked.lock().unwrap().send(q.clone()).unwrap())
            });
        }
        let mut conn = UnixStream::connect(&path).unwrap();
        conn.write_all(b"get\nprotocol=https\nhost=example.com\n").unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        let q = questions.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!((q.op.as_str(), q.input.as_str()), ("get", "protocol=https\nhost=example.com\n"));
        pending.answer(CredentialAnswer { id: q.id, output: "username=u\npassword=p\n".into() });
        let mut answer = String::new();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        conn.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "username=u\npassword=p\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
