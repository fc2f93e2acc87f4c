//! hypervisors
