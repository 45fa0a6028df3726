//! The Rust side of the Curator <-> rzk-client lock interoperability test
//! (`tests/interop/run.sh`; the Java side is `tests/interop/InteropLock.java`).
//!
//! ```text
//! cargo run -p rzk-client --example interop_lock -- HOSTS MODE BASE ROUNDS NAME PARTIES HOLD_MS
//!   MODE  mutex: recipes::Mutex on BASE/lock every round
//!         rw:    recipes::ReadWriteLock on BASE/lock, write lock on even rounds,
//!                read lock on odd rounds
//! ```
//!
//! Inside an exclusive section the program creates the ephemeral `BASE/holder` (NODEEXISTS
//! means two holders: a mutual-exclusion violation), checks no reader is inside, does an
//! unversioned read-sleep-write increment of `BASE/counter` (a lost update shows up at the
//! end) and records hand-overs through `BASE/last`. Inside a read section it registers under
//! `BASE/readers` and checks no writer holds `BASE/holder`. The protocol must stay in step
//! with the Java program. Prints a `RESULT ...` line; exits 1 on any violation.

use std::time::Duration;

use rand::Rng;
use rzk_client::recipes::{Mutex, ReadWriteLock};
use rzk_client::{open_acl_unsafe, Client, CreateMode, Error};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long to wait for the other parties at the start and end barriers.
const BARRIER_WAIT: Duration = Duration::from_secs(300);
/// Longest wait for one acquisition before the run counts as failed.
const ACQUIRE_WAIT: Duration = Duration::from_secs(60);

struct Party {
    zk: Client,
    base: String,
    name: String,
    violations: u64,
    handoffs: u64,
}

impl Party {
    fn violation(&mut self, what: &str) {
        self.violations += 1;
        println!("VIOLATION {}: {what}", self.name);
    }

    fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.base)
    }

    async fn ensure(&self, path: &str, data: &[u8]) -> Result<(), Error> {
        let mut cur = String::new();
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        for (i, c) in comps.iter().enumerate() {
            cur.push('/');
            cur.push_str(c);
            let d: &[u8] = if i + 1 == comps.len() { data } else { b"" };
            match self
                .zk
                .create(&cur, d, &open_acl_unsafe(), CreateMode::Persistent)
                .await
            {
                Ok(_) | Err(Error::NodeExists) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn barrier(&self, dir: &str, parties: usize) -> Result<(), BoxError> {
        let deadline = tokio::time::Instant::now() + BARRIER_WAIT;
        while self.zk.get_children(dir).await?.len() < parties {
            if tokio::time::Instant::now() > deadline {
                return Err(format!("barrier {dir} timed out").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    async fn read_number(&self, rel: &str) -> Result<i64, BoxError> {
        let (d, _) = self.zk.get_data(&self.path(rel)).await?;
        Ok(String::from_utf8_lossy(&d).trim().parse()?)
    }

    async fn exclusive_section(&mut self, hold: Duration) -> Result<(), BoxError> {
        let holder = self.path("holder");
        match self
            .zk
            .create(
                &holder,
                self.name.as_bytes(),
                &open_acl_unsafe(),
                CreateMode::Ephemeral,
            )
            .await
        {
            Ok(_) => {}
            Err(Error::NodeExists) => {
                let (d, _) = self.zk.get_data(&holder).await.unwrap_or_default();
                let who = String::from_utf8_lossy(&d).into_owned();
                self.violation(&format!("holder node exists (held by {who})"));
            }
            Err(e) => return Err(e.into()),
        }
        let readers = self.zk.get_children(&self.path("readers")).await?;
        if !readers.is_empty() {
            self.violation(&format!("readers inside a write section: {readers:?}"));
        }
        let v = self.read_number("counter").await?;
        tokio::time::sleep(hold).await;
        self.zk
            .set_data(&self.path("counter"), (v + 1).to_string().as_bytes(), None)
            .await?;
        let (last, _) = self.zk.get_data(&self.path("last")).await?;
        if !last.is_empty() && last != self.name.as_bytes() {
            self.handoffs += 1;
        }
        self.zk
            .set_data(&self.path("last"), self.name.as_bytes(), None)
            .await?;
        match self.zk.delete(&holder, None).await {
            Ok(()) => {}
            Err(Error::NoNode) => self.violation("holder node vanished inside the section"),
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    async fn read_section(&mut self, hold: Duration) -> Result<(), BoxError> {
        let mine = self
            .zk
            .create(
                &self.path("readers/r-"),
                self.name.as_bytes(),
                &open_acl_unsafe(),
                CreateMode::EphemeralSequential,
            )
            .await?;
        if self.zk.exists(&self.path("holder")).await?.is_some() {
            self.violation("writer inside a read section");
        }
        tokio::time::sleep(hold).await;
        self.zk.delete(&mine, None).await?;
        Ok(())
    }
}

fn usage() -> BoxError {
    "usage: interop_lock HOSTS MODE(mutex|rw) BASE ROUNDS NAME PARTIES HOLD_MS".into()
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 7 {
        return Err(usage());
    }
    let (hosts, mode, base, name) = (&a[0], a[1].as_str(), &a[2], &a[4]);
    let rounds: usize = a[3].parse()?;
    let parties: usize = a[5].parse()?;
    let hold = Duration::from_millis(a[6].parse()?);
    if mode != "mutex" && mode != "rw" {
        return Err(usage());
    }
    let zk = Client::connect(hosts, Duration::from_secs(15)).await?;
    let mut p = Party {
        zk: zk.clone(),
        base: base.clone(),
        name: name.clone(),
        violations: 0,
        handoffs: 0,
    };
    for rel in ["ready", "readers", "done", "lock"] {
        p.ensure(&p.path(rel), b"").await?;
    }
    p.ensure(&p.path("counter"), b"0").await?;
    p.ensure(&p.path("last"), b"").await?;
    zk.create(
        &p.path(&format!("ready/{name}")),
        b"",
        &open_acl_unsafe(),
        CreateMode::Ephemeral,
    )
    .await?;
    p.barrier(&p.path("ready"), parties).await?;

    let lock_path = p.path("lock");
    let mutex = Mutex::new(zk.clone(), &lock_path)?;
    let rw = ReadWriteLock::new(zk.clone(), &lock_path)?;
    let (mut acquired, mut reads, mut writes) = (0u64, 0u64, 0u64);
    for i in 0..rounds {
        let read = mode == "rw" && i % 2 == 1;
        let lock = match (mode, read) {
            ("rw", true) => rw.read_lock(),
            ("rw", false) => rw.write_lock(),
            _ => &mutex,
        };
        if !lock.try_acquire(ACQUIRE_WAIT).await? {
            println!("RESULT name={name} error=acquire-timeout round={i}");
            std::process::exit(1);
        }
        acquired += 1;
        let r = if read {
            reads += 1;
            p.read_section(hold).await
        } else {
            writes += 1;
            p.exclusive_section(hold).await
        };
        lock.release().await?;
        r?;
        let pause = rand::thread_rng().gen_range(0..=hold.as_millis() as u64);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }

    zk.create(
        &p.path(&format!("done/{name}")),
        writes.to_string().as_bytes(),
        &open_acl_unsafe(),
        CreateMode::Persistent,
    )
    .await?;
    p.barrier(&p.path("done"), parties).await?;
    let mut total = 0i64;
    for d in zk.get_children(&p.path("done")).await? {
        total += p.read_number(&format!("done/{d}")).await?;
    }
    let counter = p.read_number("counter").await?;
    let counter_ok = counter == total;
    if !counter_ok {
        p.violation(&format!(
            "counter {counter} != {total} exclusive sections (lost update)"
        ));
    }
    println!(
        "RESULT name={name} acquired={acquired} reads={reads} handoffs={} violations={} counter_ok={counter_ok}",
        p.handoffs, p.violations
    );
    zk.close().await?;
    if p.violations > 0 {
        std::process::exit(1);
    }
    Ok(())
}
