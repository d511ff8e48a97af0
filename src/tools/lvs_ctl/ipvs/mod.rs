//! The IPVS backend: generic netlink family `IPVS`, version 1.
