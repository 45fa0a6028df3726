//! A mutex holder whose server, a follower, stalls (SIGSTOP) must be told it may have
//! lost the lock before another client, on another member, takes it.
//!
//! Three `rzk server` processes (this crate's binary) on free loopback ports. The holder
//! (session timeout 3 s) is connected to one follower only; it takes the lock, stays
//! quiet for 600 ms, sends one request, and its follower is stopped right after the
//! answer. The follower relays its clients' activity to the leader only with its next
//! ping answer, so that last request never reaches the leader: the leader expires the
//! session a timeout after the holder's previous activity, 600 ms earlier than the
//! holder's `heard_at`. `lost()` counted a whole timeout from `heard_at` and fired up to
//! 650 ms after the other client had the lock (found by a break-it review, against rzk
//! and ZooKeeper alike); it now fires when the holder notices the silence (two thirds of
//! the timeout), or a third of a timeout after `heard_at` when its connection breaks.
//! Only processes this test started are signalled (by PID).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rzk_client::recipes::{LostReason, Mutex};
use rzk_client::Client;
use rzk_testkit::server::{four_letter, free_ports, fresh_dir};
use tokio::time::timeout;

const MEMBERS: usize = 3;
const SESSION: Duration = Duration::from_millis(3000);

struct Member {
    child: Child,
    client: SocketAddr,
}

impl Member {
    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
    }

    fn mode(&self) -> Option<String> {
        let out = four_letter(self.client, "srvr").ok()?;
        out.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_owned)
    }
}

struct Ensemble(Vec<Member>);

impl Drop for Ensemble {
    fn drop(&mut self) {
        for m in &mut self.0 {
            m.signal("CONT");
            let _ = m.child.kill();
            let _ = m.child.wait();
        }
    }
}

fn start_ensemble(dir: &Path) -> Ensemble {
    let ports = free_ports(3 * MEMBERS);
    let servers: String = (0..MEMBERS)
        .map(|i| {
            format!(
                "server.{}=127.0.0.1:{}:{}\n",
                i + 1,
                ports[MEMBERS + i],
                ports[2 * MEMBERS + i]
            )
        })
        .collect();
    let mut members = Vec::new();
    for (i, &client_port) in ports.iter().enumerate().take(MEMBERS) {
        let d = dir.join(format!("m{}", i + 1));
        let data = d.join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        std::fs::write(data.join("myid"), format!("{}\n", i + 1)).expect("myid");
        let cfg = d.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
                 clientPortAddress=127.0.0.1\nminSessionTimeout=1000\nmaxSessionTimeout=20000\n\
                 4lw.commands.whitelist=*\nadmin.enableServer=false\n{servers}",
                data.display(),
                client_port
            ),
        )
        .expect("zoo.cfg");
        let log = std::fs::File::create(d.join("server.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_rzk"))
            .arg("server")
            .arg(&cfg)
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start rzk server");
        members.push(Member {
            child,
            client: SocketAddr::from(([127, 0, 0, 1], client_port)),
        });
    }
    Ensemble(members)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_on_a_stalled_follower_is_told_before_another_client_takes_the_lock() {
    let dir = fresh_dir();
    let ens = start_ensemble(&dir);
    let until = Instant::now() + Duration::from_secs(60);
    let (f1, other) = loop {
        let modes: Vec<Option<String>> =
            tokio::task::block_in_place(|| ens.0.iter().map(Member::mode).collect());
        let followers: Vec<usize> = (0..MEMBERS)
            .filter(|&i| modes[i].as_deref() == Some("follower"))
            .collect();
        if followers.len() == 2 && modes.iter().any(|m| m.as_deref() == Some("leader")) {
            break (followers[0], followers[1]);
        }
        assert!(
            Instant::now() < until,
            "no leader: {modes:?} (logs in {dir:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let holder_zk = Client::builder(&ens.0[f1].client.to_string())
        .session_timeout(SESSION)
        .connect()
        .await
        .expect("holder connects");
    let waiter_zk = Client::builder(&ens.0[other].client.to_string())
        .session_timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("waiter connects");
    let holder = Mutex::new(holder_zk.clone(), "/stalled/lock").unwrap();
    holder.acquire().await.expect("holder takes the lock");
    tokio::time::sleep(Duration::from_millis(600)).await;
    holder_zk.exists("/").await.expect("exists");
    ens.0[f1].signal("STOP");
    let t0 = tokio::time::Instant::now();
    let lost = {
        let holder = holder;
        tokio::spawn(async move {
            let reason = holder.lost().await;
            (reason, tokio::time::Instant::now())
        })
    };
    let waiter = Mutex::new(waiter_zk.clone(), "/stalled/lock").unwrap();
    timeout(Duration::from_secs(30), waiter.acquire())
        .await
        .expect("the waiter gets the lock once the holder's session expires")
        .expect("acquire");
    let taken = tokio::time::Instant::now();
    let (reason, told) = timeout(Duration::from_secs(30), lost)
        .await
        .expect("loss reported")
        .expect("monitor task");
    assert_eq!(reason, LostReason::DisconnectedTooLong);
    assert!(
        told <= taken,
        "the holder was told {:?} after the stop, {:?} after the other client took the lock",
        told - t0,
        told - taken
    );
    waiter.release().await.expect("release");
    ens.0[f1].signal("CONT");
    drop(ens);
    let _ = std::fs::remove_dir_all(&dir);
}
