//! What a stranger can do, tried as one would: reach the local daemon without its token, from a web
//! page, or as another Unix user (`daemon`); flood the host with calls (`limits`); and what a journal that cannot be written does to a deploy (`journal`).

mod daemon;
mod journal;
mod limits;
