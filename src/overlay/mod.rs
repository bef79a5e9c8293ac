//! The merged view. (Being written.)
