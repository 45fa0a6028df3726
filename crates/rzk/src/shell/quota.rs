//! `setquota`, `listquota` and `delquota`: zkCli's quota commands (its
//! `SetQuotaCommand`, `ListQuotaCommand`, `DelQuotaCommand`), with the same checks,
//! node layout under `/zookeeper/quota` and printed lines. The server maintains the
//! stats node (`rzk_server::tree::quota`); these commands only write the limits.

use super::{error_message, flags, Flags};
use rzk_client::{Client, CreateMode, Error};
use rzk_server::tree::quota::{
    limit_path, stat_path, StatsTrack, BYTES, BYTE_HARD_LIMIT, COUNT, COUNT_HARD_LIMIT, QUOTA_ROOT,
};

pub const SETQUOTA_USAGE: &str = "setquota -n|-b|-N|-B val path";
pub const LISTQUOTA_USAGE: &str = "listquota path";
pub const DELQUOTA_USAGE: &str = "delquota [-n|-b|-N|-B] path";

/// The option letters and the [`StatsTrack`] key each sets.
const OPTIONS: [(char, &str); 4] = [
    ('n', COUNT),
    ('b', BYTES),
    ('N', COUNT_HARD_LIMIT),
    ('B', BYTE_HARD_LIMIT),
];

fn zk_err(e: Error, path: &str) -> String {
    error_message(&e, path)
}

/// The limits asked for by `-n/-b/-N/-B`, every other limit -1 (zkCli's
/// `checkOptionValue`): counts must be > 0, byte limits >= 0.
fn requested_limits(f: &Flags) -> Result<StatsTrack, String> {
    let mut q = StatsTrack::default();
    for (_, key) in OPTIONS {
        q.set(key, -1);
    }
    for (opt, key) in OPTIONS {
        let Some(v) = f.values.get(&opt) else {
            continue;
        };
        let count = key == COUNT || key == COUNT_HARD_LIMIT;
        let n: i64 = if count {
            v.parse::<i32>().map(i64::from)
        } else {
            v.parse::<i64>()
        }
        .map_err(|_| "NumberFormatException happens when parsing the option value".to_string())?;
        if count && n <= 0 {
            return Err("the num quota must be greater than zero".into());
        }
        if !count && n < 0 {
            return Err("the bytes quota must be greater than or equal to zero".into());
        }
        q.set(key, n);
    }
    Ok(q)
}

/// `setquota -n|-b|-N|-B val path`.
pub async fn setquota(zk: &Client, args: &[String]) -> Result<(), String> {
    let f = flags(args, "n:b:N:B:")?;
    // zkCli's four options are one required group of which only one may be given; its
    // option parser's messages.
    // (The same option again is no second choice of the group.)
    let mut given = Vec::new();
    for (o, _) in OPTIONS {
        if f.values.contains_key(&o) {
            given.push((args.iter().position(|a| a.starts_with(&format!("-{o}"))), o));
        }
    }
    given.sort();
    let mut given = given.into_iter().map(|(_, o)| o);
    match (given.next(), given.next()) {
        (None, _) => return Err("org.apache.commons.cli.MissingOptionException: Missing required option: [-n num soft quota, -b bytes soft quota, -N num hard quota, -B bytes hard quota]".into()),
        (Some(first), Some(second)) => return Err(format!("org.apache.commons.cli.AlreadySelectedException: The option '{second}' was specified but an option from this group has already been selected: '{first}'")),
        _ => {}
    }
    let path = f.rest.first().ok_or(SETQUOTA_USAGE)?.clone();
    // zkCli prints these three to stderr and counts the command as done (exit 0 in a
    // one-shot run), where its other failures are errors.
    if path.starts_with(QUOTA_ROOT) {
        eprintln!("cannot set a quota under the path: {QUOTA_ROOT}");
        return Ok(());
    }
    let quota = match requested_limits(&f) {
        Ok(q) => q,
        Err(why) => {
            eprintln!("{why}");
            return Ok(());
        }
    };
    if f.values.is_empty() {
        eprintln!("{SETQUOTA_USAGE}");
        return Ok(());
    }
    if zk
        .exists(&path)
        .await
        .map_err(|e| zk_err(e, &path))?
        .is_none()
    {
        return Err(format!("{path} does not exist."));
    }
    check_no_child_quota(zk, &path).await?;
    check_no_parent_quota(zk, &path).await?;
    // As zkCli: `/zookeeper` and `/zookeeper/quota` are created when the quota root is
    // missing, which happens under a chroot (`-server host:port/app`: the server's own
    // quota root is outside it).
    if zk
        .exists(QUOTA_ROOT)
        .await
        .map_err(|e| zk_err(e, QUOTA_ROOT))?
        .is_none()
    {
        for dir in ["/zookeeper", QUOTA_ROOT] {
            match zk
                .create_opt(
                    dir,
                    None,
                    &rzk_client::open_acl_unsafe(),
                    CreateMode::Persistent,
                )
                .await
            {
                // zkCli stops creating at the first NodeExists.
                Ok(_) => {}
                Err(Error::NodeExists) => break,
                Err(e) => return Err(zk_err(e, dir)),
            }
        }
    }
    // The quota subtree's directories, then limits and stats.
    let mut dir = String::from(QUOTA_ROOT);
    for part in path.split('/').skip(1) {
        dir.push('/');
        dir.push_str(part);
        if zk
            .exists(&dir)
            .await
            .map_err(|e| zk_err(e, &dir))?
            .is_none()
        {
            match zk
                .create_opt(
                    &dir,
                    None,
                    &rzk_client::open_acl_unsafe(),
                    CreateMode::Persistent,
                )
                .await
            {
                Ok(_) | Err(Error::NodeExists) => {}
                Err(e) => return Err(zk_err(e, &dir)),
            }
        }
    }
    let (limits_path, stats_path) = (limit_path(&path), stat_path(&path));
    let exists = zk
        .exists(&limits_path)
        .await
        .map_err(|e| zk_err(e, &limits_path))?;
    let open = rzk_client::open_acl_unsafe();
    if exists.is_none() {
        zk.create(
            &limits_path,
            quota.to_string().as_bytes(),
            &open,
            CreateMode::Persistent,
        )
        .await
        .map_err(|e| zk_err(e, &limits_path))?;
        let mut zero = StatsTrack::default();
        zero.set(COUNT, 0);
        zero.set(BYTES, 0);
        zk.create(
            &stats_path,
            zero.to_string().as_bytes(),
            &open,
            CreateMode::Persistent,
        )
        .await
        .map_err(|e| zk_err(e, &stats_path))?;
        let limits = read_stats(zk, &limits_path).await?;
        let stats = read_stats(zk, &stats_path).await?;
        warn_below_usage(&limits, &stats);
    } else {
        let mut limits = read_stats(zk, &limits_path).await?;
        for (_, key) in OPTIONS {
            if quota.get(key) > -1 {
                limits.set(key, quota.get(key));
            }
        }
        let stats = read_stats(zk, &stats_path).await?;
        warn_below_usage(&limits, &stats);
        zk.set_data(&limits_path, limits.to_string().as_bytes(), None)
            .await
            .map_err(|e| zk_err(e, &limits_path))?;
    }
    Ok(())
}

async fn read_stats(zk: &Client, path: &str) -> Result<StatsTrack, String> {
    let (data, _) = zk.get_data(path).await.map_err(|e| zk_err(e, path))?;
    StatsTrack::from_bytes(&data).map_err(|e| e.to_string())
}

/// zkCli's warnings when a new limit is already below the usage.
fn warn_below_usage(limits: &StatsTrack, stats: &StatsTrack) {
    let below =
        |soft: i64, hard: i64, used: i64| (soft > -1 && soft < used) || (hard > -1 && hard < used);
    if below(limits.count(), limits.count_hard_limit(), stats.count()) {
        outln!(
            "[Warning]: the count quota you create is less than the existing count:{}",
            stats.count()
        );
    }
    if below(limits.bytes(), limits.byte_hard_limit(), stats.bytes()) {
        outln!(
            "[Warning]: the bytes quota you create is less than the existing bytes:{}",
            stats.bytes()
        );
    }
}

/// Refuses a quota on a path below which another path has one.
async fn check_no_child_quota(zk: &Client, path: &str) -> Result<(), String> {
    let top = format!("{QUOTA_ROOT}{path}");
    let mut stack = vec![top.clone()];
    while let Some(dir) = stack.pop() {
        let children = match zk.get_children(&dir).await {
            Ok(c) => c,
            Err(Error::NoNode) => continue,
            Err(e) => return Err(zk_err(e, &dir)),
        };
        for child in &children {
            if dir != top && child == rzk_server::tree::quota::LIMIT_NODE {
                let below = &dir[QUOTA_ROOT.len()..];
                return Err(format!("{path} has a child {below} which has a quota"));
            }
        }
        stack.extend(children.iter().map(|c| format!("{dir}/{c}")));
    }
    Ok(())
}

/// Refuses a quota on a path above which another path has one.
async fn check_no_parent_quota(zk: &Client, path: &str) -> Result<(), String> {
    let parts: Vec<&str> = path.split('/').collect();
    let mut dir = String::from(QUOTA_ROOT);
    for part in parts.iter().take(parts.len().saturating_sub(1)).skip(1) {
        dir.push('/');
        dir.push_str(part);
        let children = match zk.get_children(&dir).await {
            Ok(c) => c,
            Err(Error::NoNode) => return Ok(()),
            Err(e) => return Err(zk_err(e, &dir)),
        };
        if children
            .iter()
            .any(|c| c == rzk_server::tree::quota::LIMIT_NODE)
        {
            let above = &dir[QUOTA_ROOT.len()..];
            return Err(format!("{path} has a parent {above} which has a quota"));
        }
    }
    Ok(())
}

/// `listquota path`.
pub async fn listquota(zk: &Client, args: &[String]) -> Result<(), String> {
    let path = args.first().ok_or(LISTQUOTA_USAGE)?;
    let limits_path = limit_path(path);
    eprintln!("absolute path is {limits_path}");
    let mut lines = Vec::new();
    for (label, p) in [("quota", limits_path), ("stat", stat_path(path))] {
        match zk.get_data(&p).await {
            Ok((data, _)) => {
                let st = StatsTrack::from_bytes(&data).map_err(|e| e.to_string())?;
                lines.push(format!("Output {label} for {path} {st}"));
            }
            Err(Error::NoNode) => {
                // zkCli reports it and counts the command as done (exit status 0).
                eprintln!("quota for {path} does not exist.");
                return Ok(());
            }
            Err(e) => return Err(zk_err(e, &p)),
        }
    }
    for l in lines {
        outln!("{l}");
    }
    Ok(())
}

/// `delquota [-n|-b|-N|-B] path`: without a flag the whole quota goes (and the
/// quota directories it leaves empty); with flags only those limits become -1.
pub async fn delquota(zk: &Client, args: &[String]) -> Result<(), String> {
    let f = flags(args, "nbNB")?;
    // As setquota's, delquota's options are one group of which zkCli takes one (not
    // required here: none deletes the whole quota).
    let mut given: Vec<char> = Vec::new();
    for c in &f.set {
        if !given.contains(c) {
            given.push(*c);
        }
    }
    if let [first, second, ..] = given[..] {
        return Err(format!("org.apache.commons.cli.AlreadySelectedException: The option '{second}' was specified but an option from this group has already been selected: '{first}'"));
    }
    let path = f.rest.first().ok_or(DELQUOTA_USAGE)?.clone();
    let dir = format!("{QUOTA_ROOT}{path}");
    let limits_path = limit_path(&path);
    if zk
        .exists(&limits_path)
        .await
        .map_err(|e| zk_err(e, &limits_path))?
        .is_none()
    {
        outln!("Quota does not exist for {path}");
        return Ok(());
    }
    let mut limits = match zk.get_data(&limits_path).await {
        Ok((d, _)) => StatsTrack::from_bytes(&d).map_err(|e| e.to_string())?,
        Err(Error::NoNode) => return Err(format!("quota for {path} does not exist.")),
        Err(e) => return Err(zk_err(e, &limits_path)),
    };
    let chosen: Vec<&str> = OPTIONS
        .iter()
        .filter(|(o, _)| f.set.contains(o))
        .map(|(_, k)| *k)
        .collect();
    if chosen.is_empty() {
        let children = zk.get_children(&dir).await.map_err(|e| zk_err(e, &dir))?;
        for c in children {
            let p = format!("{dir}/{c}");
            zk.delete(&p, None).await.map_err(|e| zk_err(e, &p))?;
        }
        // Remove the quota directories left empty, up to /zookeeper/quota.
        let mut p = dir;
        while p != QUOTA_ROOT {
            let children = zk.get_children(&p).await.map_err(|e| zk_err(e, &p))?;
            if !children.is_empty() {
                break;
            }
            zk.delete(&p, None).await.map_err(|e| zk_err(e, &p))?;
            p.truncate(p.rfind('/').unwrap_or(0));
        }
    } else {
        for key in chosen {
            limits.set(key, -1);
        }
        zk.set_data(&limits_path, limits.to_string().as_bytes(), None)
            .await
            .map_err(|e| zk_err(e, &limits_path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(words: &[&str]) -> Flags {
        let w: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        flags(&w, "n:b:N:B:").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn limits_text_as_zkcli_writes_it() {
        let q = requested_limits(&f(&["-n", "10", "/app"])).unwrap();
        assert_eq!(
            q.to_string(),
            "count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"
        );
        let q = requested_limits(&f(&["-B", "0", "-N", "3", "/app"])).unwrap();
        assert_eq!(
            q.to_string(),
            "count=-1,bytes=-1=;byteHardLimit=0;countHardLimit=3"
        );
        assert_eq!(
            requested_limits(&f(&["-n", "0", "/a"])).unwrap_err(),
            "the num quota must be greater than zero"
        );
        assert_eq!(
            requested_limits(&f(&["-b", "-1", "/a"])).unwrap_err(),
            "the bytes quota must be greater than or equal to zero"
        );
        assert_eq!(
            requested_limits(&f(&["-n", "x", "/a"])).unwrap_err(),
            "NumberFormatException happens when parsing the option value"
        );
    }
}
