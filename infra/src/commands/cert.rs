//! `herald cert`: a private CA and the certificates it signs, for the hub link (edges verify
//! hubs against the CA by the host name in `--hub`) and for listeners on private networks.
//!
//! ```sh
//! herald cert ca --dir certs                          # certs/ca.crt, certs/ca.key
//! herald cert issue --dir certs --name hub.internal   # certs/hub.internal.crt, .key
//! ```
//!
//! Keys are written readable by their owner only; existing files are never overwritten.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::process::{EXIT_CONFIG, EXIT_OS, fail};
use crate::tls::issue::{self, Pair};

/// `herald cert` arguments.
#[derive(Debug, Args)]
pub struct CertCommand {
    /// What to make.
    #[command(subcommand)]
    pub what: CertWhat,
}

/// What `herald cert` makes.
#[derive(Debug, Subcommand)]
pub enum CertWhat {
    /// Make a CA: DIR/ca.crt (give it to edges: --hub-ca) and DIR/ca.key (keep it private).
    Ca {
        /// Where to write.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "Herald CA")]
        common_name: String,
        /// Days it is valid.
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// When DIR/ca.crt and DIR/ca.key both exist, keep them and succeed (an init container
        /// that runs on every start).
        #[arg(long)]
        keep: bool,
    },
    /// Make a server certificate signed by DIR/ca.crt and DIR/ca.key: DIR/OUT.crt, DIR/OUT.key.
    Issue {
        /// Where the CA is and the certificate goes.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// A DNS name or IP address the certificate is valid for (what edges put in --hub);
        /// repeat for several.
        #[arg(long = "name", required = true, value_name = "NAME")]
        names: Vec<String>,
        /// File name without extension (default: the first name).
        #[arg(long)]
        out: Option<String>,
        /// Days it is valid.
        #[arg(long, default_value_t = 825)]
        days: u32,
        /// When DIR/OUT.crt and DIR/OUT.key both exist, keep them and succeed (an init container
        /// that runs on every start).
        #[arg(long)]
        keep: bool,
    },
}

/// Why `herald cert` failed.
#[derive(Debug, thiserror::Error)]
enum CertCommandError {
    #[error("{0} exists; not overwriting it (move it away or pick another --dir/--out)")]
    Exists(PathBuf),
    #[error("cannot read {path}: {source} (make a CA first: herald cert ca --dir DIR)")]
    NoCa {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Issue(#[from] issue::IssueError),
}

impl CertCommandError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Exists(_) | Self::NoCa { .. } | Self::Issue(_) => EXIT_CONFIG,
            Self::Write { .. } => EXIT_OS,
        }
    }
}

/// Makes what was asked.
pub fn run(command: CertCommand) -> ExitCode {
    let outcome = match command.what {
        CertWhat::Ca {
            dir, keep: true, ..
        } if pair_exists(&dir, "ca") => Ok(kept(&dir, "ca")),
        CertWhat::Ca {
            dir,
            common_name,
            days,
            keep: _,
        } => issue::new_ca(&common_name, days)
            .map_err(CertCommandError::from)
            .and_then(|pair| write_pair(&dir, "ca", &pair)),
        CertWhat::Issue {
            dir,
            names,
            out,
            keep: true,
            ..
        } if pair_exists(&dir, out.as_deref().unwrap_or(&names[0])) => {
            Ok(kept(&dir, out.as_deref().unwrap_or(&names[0])))
        }
        CertWhat::Issue {
            dir,
            names,
            out,
            days,
            keep: _,
        } => read_ca(&dir).and_then(|ca| {
            let out = out.unwrap_or_else(|| names[0].clone());
            let pair = issue::issue(&ca, &names, days)?;
            write_pair(&dir, &out, &pair)
        }),
    };
    match outcome {
        Ok(written) => {
            #[allow(clippy::print_stdout, reason = "saying what was written is the job")]
            {
                println!("{written}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => fail(error.exit_code(), error),
    }
}

/// Whether DIR/NAME.crt and DIR/NAME.key both exist.
fn pair_exists(dir: &Path, name: &str) -> bool {
    ["crt", "key"]
        .iter()
        .all(|extension| dir.join(format!("{name}.{extension}")).exists())
}

/// What `--keep` says when it kept an existing pair.
fn kept(dir: &Path, name: &str) -> String {
    format!(
        "kept {} and {}",
        dir.join(format!("{name}.crt")).display(),
        dir.join(format!("{name}.key")).display()
    )
}

fn read_ca(dir: &Path) -> Result<Pair, CertCommandError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| CertCommandError::NoCa { path, source })
    };
    Ok(Pair {
        cert_pem: read("ca.crt")?,
        key_pem: read("ca.key")?,
    })
}

/// Writes NAME.crt (mode 0644) and NAME.key (0600), neither overwriting anything; returns what
/// it wrote, for the user.
fn write_pair(dir: &Path, name: &str, pair: &Pair) -> Result<String, CertCommandError> {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    for path in [&cert, &key] {
        if path.exists() {
            return Err(CertCommandError::Exists(path.clone()));
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| CertCommandError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    write_new(&key, &pair.key_pem, 0o600)?;
    write_new(&cert, &pair.cert_pem, 0o644)?;
    Ok(format!("wrote {} and {}", cert.display(), key.display()))
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), CertCommandError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|source| CertCommandError::Write {
            path: path.to_path_buf(),
            source,
        })
}
