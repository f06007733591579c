//! What a stranger can do, tried as one would: reach the local daemon without its token, from a web
//! page, or as another Unix user.

mod daemon;
