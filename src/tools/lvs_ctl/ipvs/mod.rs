//! The IPVS backend: generic netlink family `IPVS`, version 1.

// Placeholder until the backend's branch is merged (it replaces this file).
use super::backend::{Backend, Error, Kind, Result};
use super::model::{Change, Table};

pub fn available() -> bool {
    false
}

pub struct Ipvs;

impl Ipvs {
    pub fn open() -> Result<Ipvs> {
        Err(Error::Unavailable("the ipvs backend is not built yet".into()))
    }
}

impl Backend for Ipvs {
    fn kind(&self) -> Kind {
        Kind::Ipvs
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
