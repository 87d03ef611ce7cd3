use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use dacon_core::colorize::ColorizeOptions;
use dacon_core::dataset::{open_clips, Need};
use dacon_server::{App, Config};

use crate::args::{EngineArgs, GapOverlayArg, LineArgs, OutputArgs};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The cut: a clip folder (`line/` + `ref/`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output folder (default: `DIR/pred`); corrections go to
    /// `OUT/corrections`, exports to `OUT/export`.
    #[arg(long, short = 'o', value_name = "OUT")]
    pub out: Option<PathBuf>,
    /// Port (0: any free one).
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// Listen on this address instead of 127.0.0.1 (e.g. 0.0.0.0 for a
    /// studio network). Requires a token: one is generated and printed in
    /// the address unless --token is given.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<IpAddr>,
    /// Token every API call must carry (`?token=` in the printed address).
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// Accept this host name in the Host header besides IP addresses and
    /// localhost (the machine's name on the studio network); repeatable.
    #[arg(long, value_name = "NAME")]
    pub allow_host: Vec<String>,
    /// Flag segments whose confidence margin is below this.
    #[arg(long, default_value_t = 0.15, value_name = "M")]
    pub flag_margin: f32,
    /// How many previous frames stay references when colouring.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub window: u32,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub line: LineArgs,
    #[command(flatten)]
    pub gap_overlay: GapOverlayArg,
}

pub fn run(args: &ServeArgs) -> Result<()> {
    let mut clips = open_clips(&args.dir, Need::Inference)?;
    if clips.len() != 1 {
        bail!(
            "{}: holds {} clips; serve one clip folder (with line/ and ref/) at a time",
            args.dir.display(),
            clips.len()
        );
    }
    let clip = clips.remove(0);
    if clip.refs.is_empty() {
        bail!(
            "{}: no references; put coloured frames in ref/line/ and ref/gt/",
            clip.dir.display()
        );
    }
    let out = args.out.clone().unwrap_or_else(|| clip.dir.join("pred"));
    let ip = args.listen.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let token = match (&args.token, ip.is_loopback()) {
        (Some(t), _) if t.is_empty() => bail!("--token must not be empty"),
        (Some(t), _) => Some(t.clone()),
        (None, true) => None,
        (None, false) => Some(dacon_server::random_token()),
    };
    let engine = args.engine.load()?;
    let cfg = Config {
        clip,
        out: out.clone(),
        colorize: ColorizeOptions {
            line: args.line.options(),
            propagate: true,
            window: args.window as usize,
            render: args.output.options(),
            export: args.output.export(args.gap_overlay.gap_overlay),
            ..ColorizeOptions::default()
        },
        token: token.clone(),
        allowed_hosts: args.allow_host.clone(),
        any_ip_host: !ip.is_loopback(),
        flag_margin: args.flag_margin,
    };
    let app = App::new(cfg, engine)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the server's threads")?;
    runtime.block_on(async {
        let addr = SocketAddr::new(ip, args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}; choose another --port"))?;
        let local = listener.local_addr()?;
        let shown = if ip.is_unspecified() {
            format!("<this machine's address>:{}", local.port())
        } else {
            local.to_string()
        };
        let query = token.map_or(String::new(), |t| format!("?token={t}"));
        println!("dacon serve: http://{shown}/{query}");
        eprintln!(
            "reviewing {} -> {} (Ctrl+C stops; everything saved stays saved)",
            app.config().clip.dir.display(),
            out.display()
        );
        std::io::stdout().flush()?;
        app.colour_missing()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        dacon_server::serve(listener, app.clone(), shutdown_signal())
            .await
            .context("the server stopped")?;
        if app.job().running {
            eprintln!("colouring interrupted; frames finished so far are saved, the rest are coloured at the next start");
        }
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
