//! The identity ZooKeeper's server gives a client authenticated by Kerberos: its
//! principal shortened by the `auth_to_local` rules (only `DEFAULT`, the rule ZooKeeper
//! uses unless `zookeeper.security.auth_to_local` says otherwise), with the instance
//! and realm put back unless `zookeeper.kerberos.removeHostFromPrincipal` /
//! `removeRealmFromPrincipal` are `true` (ZooKeeper's `SaslServerCallbackHandler` and
//! `KerberosName`).

/// A principal name split as ZooKeeper's `KerberosName` splits it: at most two
/// components and a realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosName {
    /// The first component (`zkcli` of `zkcli/host@REALM`).
    pub primary: String,
    /// The second component, if any.
    pub instance: Option<String>,
    /// The realm, if the name has one.
    pub realm: Option<String>,
}

/// A name that is neither `primary[/instance]@REALM` nor a bare name without `@`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Kerberos name: {0}")]
pub struct MalformedName(pub String);

impl KerberosName {
    /// Splits `name`. Errors: a name with an `@` that is not
    /// `primary[/instance]@realm` with no `/` or `@` inside a part.
    pub fn parse(name: &str) -> Result<KerberosName, MalformedName> {
        let part_ok = |s: &str| !s.contains(['/', '@']);
        if let Some((who, realm)) = name.split_once('@') {
            let (primary, instance) = match who.split_once('/') {
                Some((p, i)) => (p, Some(i)),
                None => (who, None),
            };
            if part_ok(realm) && part_ok(primary) && instance.is_none_or(part_ok) {
                return Ok(KerberosName {
                    primary: primary.to_owned(),
                    instance: instance.map(str::to_owned),
                    realm: Some(realm.to_owned()),
                });
            }
            return Err(MalformedName(name.to_owned()));
        }
        Ok(KerberosName {
            primary: name.to_owned(),
            instance: None,
            realm: None,
        })
    }

    /// The short name under the `DEFAULT` rule: a bare name as it is; the first
    /// component of a name in `default_realm`; `None` (no rule applies) otherwise.
    pub fn short_name(&self, default_realm: &str) -> Option<&str> {
        match (&self.instance, &self.realm) {
            (None, None) => Some(&self.primary),
            (_, Some(r)) if r == default_realm => Some(&self.primary),
            _ => None,
        }
    }
}

/// How authenticated principals become `sasl` ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameRules {
    /// The default realm (Java's: `java.security.krb5.realm`, else krb5.conf's
    /// `[libdefaults] default_realm`; empty when neither is found).
    pub default_realm: String,
    /// `zookeeper.kerberos.removeHostFromPrincipal` is `true`.
    pub remove_host: bool,
    /// `zookeeper.kerberos.removeRealmFromPrincipal` is `true`.
    pub remove_realm: bool,
}

impl NameRules {
    /// The `sasl` id of a client authenticated as `principal`: the short name, then
    /// `/instance` and `@realm` unless removed. When no rule applies (a principal of
    /// another realm) the id is the whole principal. ZooKeeper takes the authorization
    /// id the client asked for there, any name at all, so a client of a trusted foreign
    /// realm could make itself `zookeeper.superUser`; rzk never lets a client choose its
    /// id (the authorization id it sends is not used; Java's clients send their own
    /// principal). Errors: a malformed principal, which fails ZooKeeper's authorization
    /// as well.
    pub fn authorized_id(&self, principal: &str) -> Result<String, MalformedName> {
        let name = KerberosName::parse(principal)?;
        let Some(short) = name.short_name(&self.default_realm) else {
            return Ok(principal.to_owned());
        };
        let mut id = short.to_owned();
        if let (false, Some(host)) = (self.remove_host, &name.instance) {
            id.push('/');
            id.push_str(host);
        }
        if let (false, Some(realm)) = (self.remove_realm, &name.realm) {
            id.push('@');
            id.push_str(realm);
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_as_java_splits_them() {
        let n = KerberosName::parse("zkcli/host.example.com@EXAMPLE.COM").unwrap();
        assert_eq!(n.primary, "zkcli");
        assert_eq!(n.instance.as_deref(), Some("host.example.com"));
        assert_eq!(n.realm.as_deref(), Some("EXAMPLE.COM"));
        let bare = KerberosName::parse("bob").unwrap();
        assert_eq!((bare.instance, bare.realm), (None, None));
        assert_eq!(
            KerberosName::parse("a@").unwrap().realm.as_deref(),
            Some("")
        );
        for bad in ["a/b/c@R", "a@b@c", "a/b@R/x"] {
            assert!(KerberosName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_rule_and_the_removal_switches() {
        let mut rules = NameRules {
            default_realm: "EXAMPLE.COM".into(),
            ..NameRules::default()
        };
        let id = |r: &NameRules, p: &str| r.authorized_id(p).unwrap();
        assert_eq!(id(&rules, "zkcli@EXAMPLE.COM"), "zkcli@EXAMPLE.COM");
        assert_eq!(id(&rules, "zkcli/h@EXAMPLE.COM"), "zkcli/h@EXAMPLE.COM");
        rules.remove_host = true;
        assert_eq!(id(&rules, "zkcli/h@EXAMPLE.COM"), "zkcli@EXAMPLE.COM");
        rules.remove_realm = true;
        assert_eq!(id(&rules, "zkcli/h@EXAMPLE.COM"), "zkcli");
        rules.remove_host = false;
        assert_eq!(id(&rules, "zkcli/h@EXAMPLE.COM"), "zkcli/h");
        // Another realm: no rule applies; the principal stays whole (ZooKeeper would
        // take the authorization id the client asked for, which rzk never uses).
        assert_eq!(id(&rules, "zkcli/h@OTHER.ORG"), "zkcli/h@OTHER.ORG");
        assert_eq!(id(&rules, "admin@OTHER.ORG"), "admin@OTHER.ORG");
        assert!(rules.authorized_id("a/b/c@EXAMPLE.COM").is_err());
    }
}
