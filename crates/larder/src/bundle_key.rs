//! `larder bundle-key generate KEYFILE`: a key pair to sign bundles with
//! (`larder export --bundle ... --sign KEYFILE`) and to check them with on
//! the other side (`larder import --trust KEYFILE.pub`).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use larder_bundle::{PublicKey, SecretKey};

/// Arguments of `larder bundle-key`.
#[derive(Debug, clap::Args)]
pub struct BundleKeyArgs {
    #[command(subcommand)]
    command: BundleKeyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BundleKeyCommand {
    /// Make a new ed25519 key pair: the secret key in KEYFILE (PKCS#8 PEM,
    /// readable by its owner only), the public key in KEYFILE.pub (PEM).
    /// Neither file may exist yet.
    Generate {
        /// Where to write the secret key.
        #[arg(value_name = "KEYFILE")]
        keyfile: PathBuf,
    },
}

/// Runs `larder bundle-key`.
pub fn run(args: BundleKeyArgs) -> anyhow::Result<()> {
    let BundleKeyCommand::Generate { keyfile } = args.command;
    let key = SecretKey::generate();
    let public = public_path(&keyfile);
    write_new(&keyfile, &key.to_pem(), 0o600)?;
    write_new(&public, &key.public_key().to_pem(), 0o644)?;
    println!("{}: secret key (keep it on the exporting side)", keyfile.display());
    println!("{}: public key {} (give it to `larder import --trust`)", public.display(), key.public_key());
    Ok(())
}

/// Reads the secret key of `--sign`.
pub fn read_secret(path: &Path) -> anyhow::Result<SecretKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the key {}", path.display()))?;
    SecretKey::from_pem(&text).with_context(|| format!("{}", path.display()))
}

/// Reads the public keys of `--trust`.
pub fn read_public(paths: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    paths
        .iter()
        .map(|path| {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read the key {}", path.display()))?;
            PublicKey::from_pem(&text).with_context(|| format!("{}", path.display()))
        })
        .collect()
}

fn public_path(keyfile: &Path) -> PathBuf {
    let mut name = keyfile.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
