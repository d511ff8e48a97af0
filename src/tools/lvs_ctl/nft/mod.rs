//! The nftables backend: a table of its own, `inet hakit_lvs`, changed only in whole batches.

// Placeholder until the backend's branch is merged (it replaces this file).
use super::backend::{Backend, Error, Kind, Result};
use super::model::{Change, Table};

pub fn available() -> bool {
    false
}

pub struct Nft;

impl Nft {
    pub fn open() -> Result<Nft> {
        Err(Error::Unavailable("the nft backend is not built yet".into()))
    }
}

impl Backend for Nft {
    fn kind(&self) -> Kind {
        Kind::Nft
    }
    fn read(&mut self) -> Result<Table> {
        Err(self.lacks("table"))
    }
    fn check(&self, _c: &Change) -> Result<()> {
        Err(self.lacks("table"))
    }
    fn commit(&mut self, _current: &Table, _changes: &[Change]) -> Result<()> {
        Err(self.lacks("table"))
    }
}
