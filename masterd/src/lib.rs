//! masterd
