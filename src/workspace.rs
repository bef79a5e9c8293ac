//! A workspace: project + state dir + overlay + journal. (Being written.)
