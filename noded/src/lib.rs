//! noded
