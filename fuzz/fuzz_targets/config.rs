//! zoo.cfg text, JVM `-D` flags (system properties) and the `myid` file, through the
//! parsers start-up uses (`config::Config::from_properties_with`,
//! `config::jvm_flag_properties`, `Config::load_my_id`), and what a parsed config is
//! rendered into (`conf`: `Config::summary_lines`). There is no separate dynamic
//! config file parser in rzk (`dynamicConfigFile` is refused by the zoo.cfg parser,
//! which this target covers).
//!
//! Input: three parts split at NUL bytes: zoo.cfg, JVM flags, myid content.
//!
//! Must hold: no panic; a bad config is a typed `ConfigError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk_fuzz::fresh_dir;
use rzk_server::config::{jvm_flag_properties, parse_properties, Config, FourLetterWhitelist};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let cfg_text = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let flags = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let myid = parts.next().unwrap_or_default();

    let _ = parse_properties(&cfg_text);
    let system = jvm_flag_properties(&flags);
    let _ = FourLetterWhitelist::parse(&cfg_text);
    match Config::from_properties_with(&cfg_text, &system) {
        Ok(mut cfg) => {
            let _ = cfg.summary_lines();
            let _ = cfg.negotiate_timeout(i32::from_be_bytes(
                myid.get(..4)
                    .and_then(|b| b.try_into().ok())
                    .unwrap_or([0; 4]),
            ));
            let dir = fresh_dir("config");
            std::fs::write(dir.join("myid"), myid).expect("write myid");
            cfg.data_dir = dir;
            if let Err(e) = cfg.load_my_id() {
                let _ = e.to_string();
            }
            let _ = cfg.server_id();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
