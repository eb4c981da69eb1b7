//! `up`, written once: the order of the steps, when den's record is saved,
//! and how the far side's answer becomes the result. Each backend says how
//! it does each step ([`UpSteps`]); none of them orders the steps itself.

use den_protocol::{Credentials, Outcome};

use crate::plan::Plan;
use crate::record::{now, WorkspaceRecord};
use crate::{Den, Reporter, Result, UpOptions, UpResult};

/// What `create` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Made {
    /// A new container (pod, project) was made.
    pub created: bool,
    /// A stopped one was started.
    pub started: bool,
}

/// How the agent's setup (or den's on a machine) ended.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub outcome: Outcome,
    /// Where the far side's work ran: the workspace, or den on a machine.
    pub place: crate::Place,
    /// A line to say before the error (what the agent said went wrong).
    pub note: Option<String>,
    /// The workspace's SSH host key, to pin (empty: none came).
    pub host_key: String,
    /// Who the `Host ID.den` entry logs in as.
    pub user: String,
    /// The hooks that ran this time.
    pub ran: Vec<String>,
    /// den copied its binary this time.
    pub uploaded: bool,
}

/// One backend's way of doing each step of `up`.
pub(crate) trait UpSteps: Sized {
    /// Refusals that hold before anything runs.
    fn check(_plan: &Plan) -> Result<()> {
        Ok(())
    }

    /// The provider with its options (`exec.init` once per set of values)
    /// and the way to the engine.
    fn open(den: &Den, plan: &Plan, opts: &UpOptions, reporter: &mut dyn Reporter) -> Result<Self>;

    /// What the workspace may ask the client for, as the provider says.
    fn credentials(&self, plan: &Plan) -> Credentials;

    /// What must be there before den records anything: an image, a running
    /// machine; what `--reset`/`--recreate` remove.
    fn prepare(&mut self, _den: &Den, _plan: &mut Plan, _opts: &UpOptions, _r: &mut dyn Reporter) -> Result<()> {
        Ok(())
    }

    /// The record is saved before anything is made (so that `den delete`
    /// can clean up what a failing far side leaves), rather than once the
    /// container exists.
    fn record_first(&self) -> bool;

    /// What the record says before the first save.
    fn describe(&self, _plan: &Plan, _rec: &mut WorkspaceRecord) {}

    /// Makes or starts the workspace; fills in what the record learns.
    fn create(
        &mut self,
        den: &Den,
        plan: &mut Plan,
        opts: &UpOptions,
        rec: &mut WorkspaceRecord,
        reporter: &mut dyn Reporter,
    ) -> Result<Made>;

    /// The agent and its setup; fills in what the record learns.
    fn setup(
        &mut self,
        den: &Den,
        plan: &Plan,
        opts: &UpOptions,
        rec: &mut WorkspaceRecord,
        made: &mut Made,
        reporter: &mut dyn Reporter,
    ) -> Result<Setup>;
}

/// Brings the workspace of `plan` up the way `S` does each step.
pub(crate) fn up<S: UpSteps>(
    den: &Den,
    opts: &UpOptions,
    mut plan: Plan,
    reporter: &mut dyn Reporter,
) -> Result<UpResult> {
    S::check(&plan)?;
    let mut steps = S::open(den, &plan, opts, reporter)?;
    plan.initialize(opts, reporter)?;
    steps.prepare(den, &mut plan, opts, reporter)?;

    let mut saved = Saved { record: plan.record.clone(), globals: false };
    let mut rec = WorkspaceRecord::for_up(plan.record.as_ref(), den, plan.origin());
    rec.credentials = opts.credentials.unwrap_or_else(|| steps.credentials(&plan));
    steps.describe(&plan, &mut rec);
    if steps.record_first() {
        saved.stamp_and_save(den, &plan, &mut rec)?;
    }
    let mut made = steps.create(den, &mut plan, opts, &mut rec, reporter)?;
    if made.created || made.started || saved.record.as_ref() != Some(&rec) {
        saved.stamp_and_save(den, &plan, &mut rec)?;
    }
    let setup = steps.setup(den, &plan, opts, &mut rec, &mut made, reporter)?;
    if saved.record.as_ref() != Some(&rec) {
        rec.save(den)?;
    }
    if !saved.globals {
        plan.save_globals(den)?;
    }
    if !setup.host_key.is_empty() {
        crate::publish::publish(den, &mut rec, &setup.host_key, &setup.user, opts.ssh_config.as_deref())?;
    }
    if let Some(note) = &setup.note {
        reporter.line(note);
    }
    crate::plan::outcome_result(setup.outcome, setup.place)?;
    Ok(UpResult {
        record: rec,
        created: made.created,
        started: made.started,
        uploaded_agent: setup.uploaded,
        hooks_ran: setup.ran,
        host_key: setup.host_key,
    })
}

/// What the sequence has written so far.
struct Saved {
    /// den's record of the workspace as it is on disk.
    record: Option<WorkspaceRecord>,
    /// The `global` option values given now are saved for the provider:
    /// with the first record that says something was made with them (an
    /// `up` that fails before that keeps none of them).
    globals: bool,
}

impl Saved {
    fn stamp_and_save(&mut self, den: &Den, plan: &Plan, rec: &mut WorkspaceRecord) -> Result<()> {
        if !self.globals {
            plan.save_globals(den)?;
            self.globals = true;
        }
        rec.last_used_at = now();
        rec.save(den)?;
        self.record = Some(rec.clone());
        Ok(())
    }
}

/// What the agent's setup answered, for the sequence: the line to say
/// besides the error (not the hook sentence, which the error is).
pub(crate) fn setup_of(result: den_protocol::SetupResult, rec: &WorkspaceRecord, uploaded: bool) -> Setup {
    let note = match &result.outcome {
        Outcome::Failed { message } | Outcome::HookFailed { detail: Some(message), .. } => Some(message.clone()),
        _ => None,
    };
    Setup {
        note,
        user: result.user.map(|u| u.name).unwrap_or_else(|| rec.remote_user.clone()),
        outcome: result.outcome,
        place: crate::Place::Workspace,
        host_key: result.host_key,
        ran: result.ran,
        uploaded,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::WorkspaceError;

    thread_local! {
        /// What the recording steps did, in order, and how they behave.
        static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
        static SCRIPT: RefCell<Script> = RefCell::new(Script::default());
    }

    #[derive(Default, Clone)]
    struct Script {
        record_first: bool,
        fail_create: bool,
        outcome: Option<Outcome>,
        globals: Vec<(String, String)>,
    }

    fn log(what: &str) {
        LOG.with(|l| l.borrow_mut().push(what.to_string()));
    }

    /// A backend that makes nothing: it records which step ran, and what
    /// den's record on disk held at each step.
    struct RecordingSteps;

    fn saved(den: &Den, id: &str) -> bool {
        WorkspaceRecord::load(den, id).unwrap().is_some()
    }

    impl UpSteps for RecordingSteps {
        fn check(_: &Plan) -> Result<()> {
            log("check");
            Ok(())
        }
        fn open(_: &Den, _: &Plan, _: &UpOptions, _: &mut dyn Reporter) -> Result<Self> {
            log("open");
            Ok(RecordingSteps)
        }
        fn credentials(&self, _: &Plan) -> Credentials {
            Credentials { git: true, docker: false }
        }
        fn prepare(&mut self, den: &Den, p: &mut Plan, _: &UpOptions, _: &mut dyn Reporter) -> Result<()> {
            log(&format!("prepare saved={}", saved(den, &p.id)));
            Ok(())
        }
        fn record_first(&self) -> bool {
            SCRIPT.with(|s| s.borrow().record_first)
        }
        fn describe(&self, _: &Plan, rec: &mut WorkspaceRecord) {
            rec.image = "described".into();
        }
        fn create(
            &mut self,
            den: &Den,
            p: &mut Plan,
            _: &UpOptions,
            rec: &mut WorkspaceRecord,
            _: &mut dyn Reporter,
        ) -> Result<Made> {
            log(&format!("create saved={}", saved(den, &p.id)));
            if SCRIPT.with(|s| s.borrow().fail_create) {
                return Err(WorkspaceError::here("no container"));
            }
            rec.container_name = "made".into();
            Ok(Made { created: true, started: false })
        }
        fn setup(
            &mut self,
            den: &Den,
            p: &Plan,
            _: &UpOptions,
            rec: &mut WorkspaceRecord,
            _: &mut Made,
            _: &mut dyn Reporter,
        ) -> Result<Setup> {
            let on_disk = WorkspaceRecord::load(den, &p.id).unwrap().unwrap();
            log(&format!("setup saved={}", on_disk.container_name));
            rec.agent_path = "/a".into();
            let outcome = SCRIPT.with(|s| s.borrow().outcome.clone()).unwrap_or(Outcome::Done);
            let note = match &outcome {
                Outcome::Failed { message } => Some(message.clone()),
                _ => None,
            };
            Ok(Setup {
                outcome,
                place: crate::Place::Workspace,
                note,
                host_key: String::new(),
                user: "u".into(),
                ran: vec!["x".into()],
                uploaded: true,
            })
        }
    }

    struct Lines(Vec<String>);
    impl Reporter for Lines {
        fn phase(&mut self, _: &str, _: &str) {}
        fn line(&mut self, text: &str) {
            self.0.push(text.to_string());
        }
    }

    struct Ran {
        log: Vec<String>,
        result: Result<UpResult>,
        den: Den,
        lines: Vec<String>,
        _dir: tempfile::TempDir,
    }

    fn run(script: Script) -> Ran {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let den = Den { home: den_state::Home::at(dir.join("home")), context: "default".into() };
        let folder = dir.join("p");
        std::fs::create_dir_all(folder.join(".devcontainer")).unwrap();
        std::fs::write(folder.join(".devcontainer/devcontainer.json"), r#"{"image": "x"}"#).unwrap();
        let src = crate::Source { source: folder.clone(), id: Some("w".into()), ..Default::default() };
        let w = crate::plan::Identified { id: "w".into(), folder, src, fetched: Default::default() };
        let mut plan = Plan::load(&den, &w, None).unwrap();
        plan.globals = script.globals.clone();
        LOG.with(|l| l.borrow_mut().clear());
        SCRIPT.with(|s| *s.borrow_mut() = script);
        let opts = UpOptions { skip_initialize: true, ..Default::default() };
        let mut lines = Lines(vec![]);
        let result = up::<RecordingSteps>(&den, &opts, plan, &mut lines);
        Ran { log: LOG.with(|l| l.borrow().clone()), result, den, lines: lines.0, _dir: tmp }
    }

    #[test]
    fn the_steps_run_in_order_and_a_late_backend_records_once_the_container_exists() {
        let Ran { log, result: r, den, _dir, .. } = run(Script::default());
        assert_eq!(log, ["check", "open", "prepare saved=false", "create saved=false", "setup saved=made"]);
        let r = r.unwrap();
        assert!(r.created && r.uploaded_agent && r.hooks_ran == ["x"]);
        let rec = WorkspaceRecord::load(&den, "w").unwrap().unwrap();
        assert_eq!((rec.image.as_str(), rec.agent_path.as_str()), ("described", "/a"));
        assert!(rec.credentials.git);
    }

    #[test]
    fn given_global_options_are_saved_with_the_first_record_only() {
        let globals = vec![("DOCKER_PATH".to_string(), "my-docker".to_string())];
        let saved_path =
            |den: &Den| crate::providers::saved_options(den, "docker").unwrap().get("DOCKER_PATH").cloned();
        let Ran { den, result, _dir, .. } =
            run(Script { fail_create: true, globals: globals.clone(), ..Default::default() });
        assert!(result.is_err());
        assert_eq!(saved_path(&den), None, "nothing was made with them");
        let Ran { den, result, _dir, .. } = run(Script { globals: globals.clone(), ..Default::default() });
        result.unwrap();
        assert_eq!(saved_path(&den).as_deref(), Some("my-docker"));
        let script = Script { record_first: true, fail_create: true, globals, ..Default::default() };
        let Ran { den, _dir, .. } = run(script);
        assert_eq!(saved_path(&den).as_deref(), Some("my-docker"), "the record says where it is");
    }

    #[test]
    fn an_early_backend_records_before_it_makes_anything() {
        let script = Script { record_first: true, fail_create: true, ..Default::default() };
        let Ran { log, result: r, den, _dir, .. } = run(script);
        assert_eq!(log, ["check", "open", "prepare saved=false", "create saved=true"]);
        assert!(r.is_err());
        assert_eq!(WorkspaceRecord::load(&den, "w").unwrap().unwrap().image, "described");
    }

    #[test]
    fn a_late_backend_whose_create_fails_records_nothing() {
        let Ran { result: r, den, _dir, .. } = run(Script { fail_create: true, ..Default::default() });
        assert!(r.is_err());
        assert!(WorkspaceRecord::load(&den, "w").unwrap().is_none());
    }

    #[test]
    fn a_failed_setup_is_said_then_is_the_error_and_the_record_stays() {
        let outcome = Outcome::Failed { message: "the agent broke".into() };
        let Ran { result: r, den, lines, _dir, .. } = run(Script { outcome: Some(outcome), ..Default::default() });
        assert_eq!(lines, ["the agent broke"]);
        assert_eq!(r.unwrap_err().to_string(), "in the workspace: the agent broke");
        assert_eq!(WorkspaceRecord::load(&den, "w").unwrap().unwrap().agent_path, "/a");
        let hook = Outcome::HookFailed { hook: "postCreateCommand".into(), code: 7, detail: None };
        let Ran { result: r, lines, _dir, .. } = run(Script { outcome: Some(hook), ..Default::default() });
        assert!(lines.is_empty());
        assert!(matches!(r, Err(WorkspaceError::HookFailed { code: 7, .. })));
    }
}
