#[allow(dead_code, unused_imports)] // until main() calls fuse::mount
mod fuse;

fn main() {}
