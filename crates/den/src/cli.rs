//! The command line: only clap types and help text, no behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "den", version, about = "Reproducible dev workspaces on any infrastructure")]
pub struct Cli {
    /// Show every external command den runs, and more.
    #[arg(long, global = true)]
    pub debug: bool,

    /// Where den keeps its state (default: $DEN_HOME, else the platform's data folder).
    #[arg(long, global = true, value_name = "PATH")]
    pub home: Option<PathBuf>,

    /// The context to use for this command (default: $DEN_CONTEXT, else the
    /// one chosen with `den context use`).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create (or start) a workspace from a folder and set it up.
    Up(UpArgs),
    /// Stop a workspace's container.
    Stop(IdArgs),
    /// Delete a workspace: its container, the image den built, and den's record.
    Delete(DeleteArgs),
    /// Show whether a workspace is Running, Stopped, NotFound or Busy.
    Status(StatusArgs),
    /// List the workspaces of the current context.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Print the agent's log (setup and lifecycle hook output) of a workspace.
    Logs(LogsArgs),
    /// Open a shell in a workspace, or run a command there.
    Ssh(SshArgs),
    /// Build (or fetch) a workspace's image without starting it.
    Build(BuildArgs),
    /// Manage providers: the plugins that say where workspaces run.
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// Manage contexts: separate sets of providers and workspaces.
    #[command(subcommand)]
    Context(ContextCommand),
    /// Manage the machines that machine providers made.
    #[command(subcommand)]
    Machine(MachineCommand),
    /// Print a project's devcontainer configuration with its variables resolved.
    ReadConfig(ReadConfigArgs),
    /// Open a workspace in an IDE (it is brought up first when it is not running).
    Open {
        /// The workspace id.
        id: String,
        /// The IDE (default: the one chosen with `den ide use`, else VS Code).
        #[arg(long, value_name = "NAME")]
        ide: Option<String>,
        /// An option of the IDE, KEY=VALUE (repeatable).
        #[arg(long = "ide-option", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        ide_options: Vec<(String, String)>,
    },
    /// The IDEs den can open, and the default one.
    #[command(subcommand)]
    Ide(IdeCommand),
    /// The ports den forwards from a workspace to this machine.
    Ports(PortsArgs),
    /// Forward one more port of a workspace (or stop forwarding one).
    Forward(ForwardArgs),
    /// Serve the workspaces dashboard on this machine (127.0.0.1) and open it in the browser.
    Ui(UiArgs),
    /// The port forwarder of a workspace (started by `den up`).
    #[command(hide = true)]
    ForwardDaemon { id: String },
    /// Dev Container Features: publish them to a registry.
    #[command(subcommand)]
    Feature(FeatureCommand),
    /// Print den's man page (roff), e.g. `den man > /usr/local/share/man/man1/den.1`.
    Man,
    /// Print a shell completion script (e.g. `den completion bash > /etc/bash_completion.d/den`).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Runs inside the workspace (started by den itself).
    #[command(subcommand, hide = true)]
    Agent(AgentCommand),
    /// Helpers for provider manifests (`"${DEVPOD}" helper sh -c …`).
    #[command(subcommand, hide = true)]
    Helper(HelperCommand),
}

#[derive(Debug, Args)]
pub struct UiArgs {
    /// The port to listen on (default: a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// Print the URL only; do not open the browser.
    #[arg(long)]
    pub no_open: bool,
}

/// Which workspace, for `up` and `build`.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// A project folder, a git repository (`https://…`, `ssh://…`,
    /// `git@host:org/repo`, `git://…`, `file://…`, `github.com/org/repo`,
    /// with `@BRANCH_OR_TAG`, `@sha256:COMMIT`, `@pull/N/head` or
    /// `@subpath:DIR`) or an image (`image:REF`, or a reference with a tag).
    #[arg(default_value = ".", value_name = "SOURCE")]
    pub source: String,
    /// Say what SOURCE is when the string is ambiguous: `git:URL`,
    /// `image:REF` or `local:PATH` (instead of SOURCE).
    #[arg(long = "source", value_name = "KIND:VALUE", conflicts_with = "source")]
    pub source_kind: Option<String>,
    /// The workspace id (default: the folder's or repository's name,
    /// lowercased, other characters than a-z, 0-9 and - replaced by -).
    #[arg(long)]
    pub id: Option<String>,
    /// The devcontainer.json to use, relative to SOURCE.
    #[arg(long, value_name = "PATH")]
    pub devcontainer_path: Option<PathBuf>,
    /// The provider to use (default: the context's default provider).
    #[arg(long)]
    pub provider: Option<String>,
    /// A provider option for this workspace, KEY=VALUE (repeatable).
    #[arg(long = "provider-option", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub provider_options: Vec<(String, String)>,
    /// The image for a folder without a devcontainer configuration.
    #[arg(long, value_name = "IMAGE")]
    pub fallback_image: Option<String>,
    /// Use this image, whatever the configuration's image or Dockerfile.
    #[arg(long, value_name = "IMAGE")]
    pub devcontainer_image: Option<String>,
    /// Git sources: the branch or tag to check out.
    #[arg(long, value_name = "NAME")]
    pub git_branch: Option<String>,
    /// Git sources: the commit to check out.
    #[arg(long, value_name = "SHA")]
    pub git_commit: Option<String>,
    /// Git sources: the folder of the repository the workspace is.
    #[arg(long, value_name = "DIR")]
    pub git_subpath: Option<String>,
    /// Git sources: full (default), blobless, treeless or shallow.
    #[arg(long, value_name = "STRATEGY", default_value = "full")]
    pub git_clone_strategy: den_source::Strategy,
    /// Git sources: clone the submodules too, recursively.
    #[arg(long)]
    pub git_clone_recursive_submodules: bool,
    /// A variable for every session and hook, KEY=VALUE (repeatable; kept
    /// for the workspace).
    #[arg(long = "workspace-env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub workspace_env: Vec<(String, String)>,
    /// A file of KEY=VALUE lines for every session and hook.
    #[arg(long = "workspace-env-file", value_name = "FILE")]
    pub workspace_env_file: Vec<PathBuf>,
}

impl SourceArgs {
    /// The workspace these arguments name; a SOURCE that is not a local
    /// folder becomes a git or image source.
    pub fn into_source(self) -> anyhow::Result<den_workspace::Source> {
        use anyhow::Context;
        let mut env = Vec::new();
        for f in &self.workspace_env_file {
            let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let line = line.strip_prefix("export ").unwrap_or(line);
                let (k, v) = parse_key_value(line).map_err(|e| anyhow::anyhow!("{}:{}: {e}", f.display(), n + 1))?;
                let v = v.trim_matches('"').to_string();
                env.push((k, v));
            }
        }
        env.extend(self.workspace_env.iter().cloned());
        Ok(den_ops::source::source(den_ops::source::SourceRequest {
            given: self.source_kind.unwrap_or(self.source),
            id: self.id,
            devcontainer_path: self.devcontainer_path,
            provider: self.provider,
            provider_options: self.provider_options,
            fallback_image: self.fallback_image,
            devcontainer_image: self.devcontainer_image,
            git_branch: self.git_branch,
            git_commit: self.git_commit,
            git_subpath: self.git_subpath,
            git_clone_strategy: self.git_clone_strategy,
            git_clone_recursive_submodules: self.git_clone_recursive_submodules,
            workspace_env: env,
        })?)
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub workspace: SourceArgs,
    /// Make a new container (rebuilding its image), keeping the workspace.
    #[arg(long)]
    pub recreate: bool,
    /// Like --recreate, and also forget everything den made for the workspace.
    #[arg(long)]
    pub reset: bool,
    /// The IDE to open afterwards (see `den ide list`; default: the one
    /// chosen with `den ide use`, else none).
    #[arg(long, value_name = "NAME")]
    pub ide: Option<String>,
    /// `--open-ide=false`: open no IDE this time, whatever the default.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub open_ide: bool,
    /// An option of the IDE, KEY=VALUE (repeatable; `openvscode`: VERSION,
    /// DOWNLOAD_URL, ARCHIVE, SHA256, PORT, OPEN).
    #[arg(long = "ide-option", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub ide_options: Vec<(String, String)>,
    /// `--forward-ports=false`: start no port forwarder (see `den ports`).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub forward_ports: bool,
    /// The ssh config to write the `Host ID.den` entry to (default:
    /// $DEN_SSH_CONFIG, else ~/.ssh/config).
    #[arg(long, value_name = "PATH")]
    pub ssh_config: Option<PathBuf>,
    /// Machine providers: put the workspace on this machine (made when
    /// missing) instead of one of its own.
    #[arg(long, value_name = "NAME")]
    pub machine: Option<String>,
    /// `write`: resolve every Feature anew and write (or update)
    /// devcontainer-lock.json beside the configuration. Without it, an
    /// existing lockfile pins the Features and is kept up to date.
    #[arg(long, value_enum, value_name = "MODE")]
    pub lockfile: Option<LockfileMode>,
    /// A dotfiles repository (git URL or local repository) to clone into
    /// the remote user's ~/dotfiles and install once per container
    /// (default: the context's DOTFILES_URL option).
    #[arg(long, value_name = "URL")]
    pub dotfiles: Option<String>,
    /// The dotfiles' install script (default: the context's
    /// DOTFILES_SCRIPT, else the first of install.sh, install,
    /// bootstrap.sh, bootstrap, script/bootstrap, setup.sh, setup,
    /// script/setup; with none, the `.*` files are linked into the home).
    #[arg(long, value_name = "PATH")]
    pub dotfiles_script: Option<String>,
    /// A variable for the dotfiles script, KEY=VALUE (repeatable).
    #[arg(long = "dotfiles-script-env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub dotfiles_script_env: Vec<(String, String)>,
    /// Use the image `den build --repository REGISTRY/NAME --push` made for
    /// the same configuration and Features, when the engine or the registry
    /// has it; build otherwise (default: the context's PREBUILD_REPOSITORY).
    #[arg(long, value_name = "REGISTRY/NAME")]
    pub prebuild_repository: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LockfileMode {
    Write,
}

#[derive(Debug, Subcommand)]
pub enum FeatureCommand {
    /// Publish a Feature folder (or every Feature folder under PATH) to
    /// REGISTRY/NAMESPACE/<id>, tagged with its version, MAJOR.MINOR, MAJOR
    /// and latest when it is the newest. Uses the registry credentials of
    /// `docker login`; plain http only for localhost registries.
    Publish {
        path: PathBuf,
        /// Where to publish: REGISTRY/NAMESPACE (e.g. ghcr.io/me/features).
        #[arg(long, value_name = "REGISTRY/NAMESPACE")]
        namespace: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum IdeCommand {
    /// List the IDEs den can open, and which is the default.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Make an IDE the default of the current context (`none`: open none).
    Use { name: String },
}

#[derive(Debug, Subcommand)]
pub enum MachineCommand {
    /// List the machines with their state and workspaces.
    #[command(alias = "ls")]
    List {
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show whether a machine is Running, Stopped, Busy or NotFound.
    Status {
        name: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Stop a machine (and so its workspaces).
    Stop { name: String },
    /// Delete a machine.
    Delete {
        name: String,
        /// Also when workspaces are on it: they are forgotten with it.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct SshArgs {
    /// The workspace id.
    pub id: String,
    /// The command to run instead of a shell: exactly these words, as
    /// `docker exec` runs them (`den ssh ID -- make test`).
    #[arg(last = true)]
    pub command: Vec<String>,
    /// The command to run, as one line for the remote shell
    /// (`--command 'make test && make lint'`).
    #[arg(long = "command", value_name = "CMD", conflicts_with = "command")]
    pub command_string: Option<String>,
    /// Log in as this user (default: the workspace's remoteUser).
    #[arg(long)]
    pub user: Option<String>,
    /// Start in this folder (default: the workspace folder).
    #[arg(long)]
    pub workdir: Option<String>,
    /// Forward a local port: [bind:]port:host:hostport (repeatable).
    #[arg(short = 'L', value_name = "SPEC")]
    pub local: Vec<den_ssh::client::Forward>,
    /// Forward a workspace port back here: [bind:]port:host:hostport (repeatable).
    #[arg(short = 'R', value_name = "SPEC")]
    pub remote: Vec<den_ssh::client::Forward>,
    /// Forward the local ssh-agent ($SSH_AUTH_SOCK).
    #[arg(short = 'A', long = "agent-forwarding")]
    pub agent_forwarding: bool,
    /// Do not forward the devcontainer's forwardPorts.
    #[arg(long)]
    pub no_forward_ports: bool,
    /// Ask for a terminal even when running a command.
    #[arg(short = 't', conflicts_with = "no_tty")]
    pub tty: bool,
    /// Never ask for a terminal.
    #[arg(short = 'T')]
    pub no_tty: bool,
    /// Only pipe the SSH connection between stdin/stdout and the workspace
    /// (for ProxyCommand).
    #[arg(long)]
    pub stdio: bool,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The workspace id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The workspace id.
    pub id: String,
    /// Compose workspaces: the output of this service's container instead
    /// of the agent's log.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The workspace id.
    pub id: String,
    /// Remove den's record even when the container cannot be removed.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The workspace id.
    pub id: String,
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct PortsArgs {
    /// The workspace id.
    pub id: String,
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// The workspace id.
    pub id: String,
    /// `[LOCAL:]REMOTE` or `[LOCAL:]HOST:REMOTE` (HOST as the workspace
    /// reaches it, e.g. a compose service; default localhost).
    #[arg(value_name = "[LOCAL:]REMOTE", required_unless_present = "stop")]
    pub spec: Option<String>,
    /// Stop forwarding this port (the workspace's, or the local one).
    #[arg(long, value_name = "PORT", conflicts_with = "spec")]
    pub stop: Option<u16>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub workspace: SourceArgs,
    /// Also tag the image REGISTRY/NAME:<content hash>, the name
    /// `den up --prebuild-repository REGISTRY/NAME` looks for.
    #[arg(long, value_name = "REGISTRY/NAME")]
    pub repository: Option<String>,
    /// Push the tagged image (needs --repository).
    #[arg(long, requires = "repository")]
    pub push: bool,
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// List the providers (built-in and added).
    #[command(alias = "ls")]
    List(ListArgs),
    /// Make a provider the default of the current context.
    Use { name: String },
    /// Show a provider's options with their values and where they come from.
    Options {
        /// The provider (default: the context's default).
        name: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Save option values for a provider.
    SetOptions {
        name: String,
        /// KEY=VALUE (repeatable).
        #[arg(short = 'o', long = "option", value_name = "KEY=VALUE", value_parser = parse_key_value, required = true)]
        options: Vec<(String, String)>,
    },
    /// Add a provider: from a provider.yaml file, an http(s) URL, a release
    /// (OWNER/REPO[@VERSION]) or a short name (NAME[@VERSION], DevPod's
    /// loft-sh/devpod-provider-NAME).
    Add {
        source: String,
        /// The provider's name instead of the one its manifest gives.
        #[arg(long)]
        name: Option<String>,
        /// Make it the default provider of the context once added.
        #[arg(long = "use")]
        make_default: bool,
        /// An option value to save with it, KEY=VALUE (repeatable; checked
        /// as `set-options` checks them).
        #[arg(short = 'o', long = "option", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        options: Vec<(String, String)>,
        /// Replace a built-in provider of the same name.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        releases: ReleasesArg,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Read an added provider's manifest again, from the source it was added
    /// from or from SOURCE, keeping its saved options.
    Update {
        name: String,
        source: Option<String>,
        #[command(flatten)]
        releases: ReleasesArg,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete an added provider.
    #[command(alias = "rm")]
    Delete { name: String },
}

/// Where provider releases (OWNER/REPO[@VERSION], short names) are fetched.
#[derive(Debug, Clone, clap::Args)]
pub struct ReleasesArg {
    /// The release host's base URL: a release's manifest is
    /// URL/OWNER/REPO/releases/download/VERSION/provider.yaml.
    #[arg(long = "releases-url", env = "DEN_PROVIDER_RELEASES_URL", default_value = den_provider::DEFAULT_RELEASES_URL, value_name = "URL")]
    pub url: String,
}

#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// List the contexts.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Create a context.
    Create {
        name: String,
        /// KEY=VALUE (repeatable).
        #[arg(short = 'o', long = "option", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        options: Vec<(String, String)>,
    },
    /// Make a context the current one.
    Use { name: String },
    /// Delete a context (it must have no workspaces).
    #[command(alias = "rm")]
    Delete { name: String },
    /// Set options of a context (default: the current one); KEY= removes one.
    SetOptions {
        name: Option<String>,
        #[arg(short = 'o', long = "option", value_name = "KEY=VALUE", value_parser = parse_key_value, required = true)]
        options: Vec<(String, String)>,
    },
    /// Show the options of a context.
    Options {
        name: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Set the container up (request on stdin, see den_agent::protocol).
    Setup,
    /// Serve SSH on stdin/stdout.
    SshServer {
        #[arg(long)]
        stdio: bool,
        #[arg(long)]
        workdir: Option<String>,
    },
    /// Serve SSH on the direct line's socket (docs/line.md), in the background.
    LineServer,
    /// Serve SFTP on stdin/stdout.
    SftpServer,
    /// Report listening TCP ports as JSON lines (the den-ports subsystem).
    PortsWatch,
    /// Install customizations.vscode.extensions into VS Code servers as they appear.
    VscodeExtensions,
    /// Stop this container after a time without SSH sessions.
    InactivityWatch {
        #[arg(long)]
        timeout_secs: u64,
    },
    /// On a machine: bring a workspace's container up (request on stdin).
    RemoteUp,
    /// In a pod: unpack the workspace's files (a tar stream on stdin).
    ReceiveContent,
    /// In a pod: clone the workspace's repository into the volume (request on stdin).
    CloneContent,
    /// git's credential helper: asks the connected client.
    GitCredential {
        op: String,
        /// Where the relay's sockets are (default: the agent's folder).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// On a machine, while den clones: git's ssh, run by the client
    /// (`git-ssh SOCKET -- ARGS…`).
    GitSsh {
        socket: PathBuf,
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// docker's credential helper (docker-credential-den): asks the client.
    DockerCredential { op: String },
    /// Relay git credential requests to den on stdin/stdout.
    CredentialsServer,
    /// On a machine: the container's SSH server on stdin/stdout.
    RemoteTunnel {
        #[arg(long)]
        home: PathBuf,
        #[arg(long)]
        context: String,
        #[arg(long)]
        workdir: Option<String>,
        /// The credentials relay instead of the SSH server.
        #[arg(long)]
        credentials: bool,
        /// den's port forwarder: not a session for the machine's inactivity
        /// timeout; traffic through it is.
        #[arg(long)]
        forwarder: bool,
        id: String,
    },
    /// On a machine: stop, delete, status or logs of a workspace.
    RemoteOp {
        op: String,
        #[arg(long)]
        home: PathBuf,
        #[arg(long)]
        context: String,
        id: String,
    },
    /// On a machine: shut it down after a time without sessions.
    MachineWatch {
        #[arg(long)]
        home: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum HelperCommand {
    /// Run a shell command: `den helper sh -c CMD [ARG0 [ARGS…]]`, as sh.
    Sh {
        #[arg(short = 'c')]
        command: String,
        /// `$0` and the positional parameters of CMD.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

impl Cli {
    /// The output the command asked for (`--output json` where it has one),
    /// so that a failure can answer a script in the same form.
    pub fn output(&self) -> Output {
        match &self.command {
            Command::Up(a) => a.output,
            Command::Status(a) => a.output,
            Command::List(a) => a.output,
            Command::Build(a) => a.output,
            Command::ReadConfig(a) => a.output,
            Command::Ports(a) => a.output,
            Command::Provider(ProviderCommand::List(a))
            | Command::Context(ContextCommand::List(a))
            | Command::Ide(IdeCommand::List(a)) => a.output,
            Command::Feature(FeatureCommand::Publish { output, .. }) => *output,
            Command::Provider(
                ProviderCommand::Options { output, .. }
                | ProviderCommand::Add { output, .. }
                | ProviderCommand::Update { output, .. },
            )
            | Command::Context(ContextCommand::Options { output, .. })
            | Command::Machine(MachineCommand::List { output } | MachineCommand::Status { output, .. }) => *output,
            _ => Output::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// For people.
    #[default]
    Text,
    /// One JSON document on stdout, for scripts.
    Json,
}

#[derive(Debug, Args)]
pub struct ReadConfigArgs {
    /// The project folder.
    #[arg(default_value = ".")]
    pub folder: PathBuf,
    /// The devcontainer.json to use, relative to FOLDER.
    #[arg(long, value_name = "PATH")]
    pub devcontainer_path: Option<PathBuf>,
    /// Also fetch the Features and show them in install order with their
    /// option values (`featuresConfiguration`).
    #[arg(long)]
    pub include_features_configuration: bool,
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}
