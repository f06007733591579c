//! What a stranger can do, tried as one would: reach the local daemon without its token, from a web
//! page, or as another Unix user (`daemon`); flood the host with calls (`limits`); hand over a huge
//! component (`compile`); and what a journal that cannot be written does to a deploy (`journal`).

mod blast;
mod compile;
mod daemon;
mod journal;
mod limits;
