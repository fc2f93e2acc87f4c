//! masterd
pub mod jobqueue;
