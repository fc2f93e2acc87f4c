//! htools
