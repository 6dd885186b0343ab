//! An allow-list under construction: system calls allowed outright or only with given
//! argument values, merged (a call allowed outright by one group stays allowed outright),
//! then compiled to BPF with seccompiler.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// One condition on an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Argument `index` (32 bits) equals the value.
    Eq(u8, u64),
    /// Argument `index` (32 bits) has none of the mask's bits set.
    NoBits(u8, u64),
}

/// When a call is allowed: always, or when one of the alternatives (each a list of
/// conditions that must all hold) matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum When {
    Always,
    AnyOf(Vec<Vec<Arg>>),
}

/// An allow-list: system call number → when it is allowed.
#[derive(Debug, Clone, Default)]
pub struct List {
    calls: BTreeMap<i64, When>,
}

impl List {
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows each of `calls` with any arguments.
    pub fn allow(&mut self, calls: &[i64]) -> &mut Self {
        for &nr in calls {
            self.calls.insert(nr, When::Always);
        }
        self
    }

    /// Allows `nr` when all of `conds` hold (added as one more alternative).
    pub fn allow_if(&mut self, nr: i64, conds: Vec<Arg>) -> &mut Self {
        match self.calls.get_mut(&nr) {
            Some(When::Always) => {}
            Some(When::AnyOf(alts)) => {
                if !alts.contains(&conds) {
                    alts.push(conds);
                }
            }
            None => {
                self.calls.insert(nr, When::AnyOf(vec![conds]));
            }
        }
        self
    }

    /// Allows `nr` when argument `index` is one of `values`.
    pub fn allow_values(&mut self, nr: i64, index: u8, values: &[u64]) -> &mut Self {
        for &v in values {
            self.allow_if(nr, vec![Arg::Eq(index, v)]);
        }
        self
    }

    /// Adds everything `other` allows.
    pub fn merge(&mut self, other: &List) -> &mut Self {
        for (&nr, when) in &other.calls {
            match when {
                When::Always => {
                    self.calls.insert(nr, When::Always);
                }
                When::AnyOf(alts) => {
                    for conds in alts {
                        self.allow_if(nr, conds.clone());
                    }
                }
            }
        }
        self
    }

    /// Is `nr` allowed with these arguments (as the compiled filter decides; 32-bit
    /// compares)? For tests.
    pub fn allows(&self, nr: i64, args: [u64; 6]) -> bool {
        let holds = |c: &Arg| match *c {
            Arg::Eq(i, v) => args[usize::from(i)] as u32 == v as u32,
            Arg::NoBits(i, m) => args[usize::from(i)] as u32 & m as u32 == 0,
        };
        match self.calls.get(&nr) {
            None => false,
            Some(When::Always) => true,
            Some(When::AnyOf(alts)) => alts.iter().any(|conds| conds.iter().all(holds)),
        }
    }

    /// The allowed call numbers.
    pub fn numbers(&self) -> impl Iterator<Item = i64> + '_ {
        self.calls.keys().copied()
    }

    /// The BPF program: allowed calls pass, anything else traps (SIGSYS).
    pub fn compile(&self) -> Result<BpfProgram, String> {
        self.compile_with(SeccompAction::Trap, SeccompAction::Allow)
    }

    /// The BPF program with the given actions for a mismatch and a match.
    pub fn compile_with(
        &self,
        mismatch: SeccompAction,
        matched: SeccompAction,
    ) -> Result<BpfProgram, String> {
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for (&nr, when) in &self.calls {
            let chain = match when {
                When::Always => Vec::new(),
                When::AnyOf(alts) => alts
                    .iter()
                    .map(|conds| {
                        let conds = conds.iter().map(condition).collect::<Result<Vec<_>, _>>()?;
                        SeccompRule::new(conds).map_err(|e| e.to_string())
                    })
                    .collect::<Result<Vec<_>, String>>()?,
            };
            rules.insert(nr, chain);
        }
        let filter = SeccompFilter::new(rules, mismatch, matched, target_arch())
            .map_err(|e| e.to_string())?;
        BpfProgram::try_from(filter).map_err(|e| e.to_string())
    }
}

fn condition(c: &Arg) -> Result<SeccompCondition, String> {
    let (index, op, value) = match *c {
        Arg::Eq(i, v) => (i, SeccompCmpOp::Eq, v),
        Arg::NoBits(i, m) => (i, SeccompCmpOp::MaskedEq(m), 0),
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Dword, op, value).map_err(|e| e.to_string())
}

fn target_arch() -> TargetArch {
    #[cfg(target_arch = "x86_64")]
    {
        TargetArch::x86_64
    }
    #[cfg(target_arch = "aarch64")]
    {
        TargetArch::aarch64
    }
}
