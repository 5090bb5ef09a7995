//! `synthetic-upstream --projects N [--generation G] [--changed-every K] [--port P]`:
//! serves a [`Synthetic`] index on 127.0.0.1 (see `larder_testkit::synthetic`)
//! and prints `listening on http://127.0.0.1:<port>` once it accepts.

use larder_testkit::synthetic::{Synthetic, serve};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut index = Synthetic { projects: 1000, generation: 0, changed_every: 100 };
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--projects" => index.projects = value.parse()?,
            "--generation" => index.generation = value.parse()?,
            "--changed-every" => index.changed_every = value.parse()?,
            "--port" => port = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("listening on http://{}", listener.local_addr()?);
        serve(listener, index).await
    })?;
    Ok(())
}
