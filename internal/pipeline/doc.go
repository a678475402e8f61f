// Package pipeline streams positions through a prepared lens engine into a sink. It owns the loop that every
// long-running workflow shares (batch, probe train, and those built on them): a source of positions read
// from an input stream (PGN, FEN/EPD, JSONL), a batcher that encodes each position with its history into
// batches, one engine run per batch, and a Sink that consumes the analysed batches in input order.
//
// The three stages overlap (reading and encoding batch k+2, running batch k+1, consuming batch k), but a run
// has one error path and one cancellation path:
//
//   - the first failure of the engine or the sink cancels the run's context: the reader stops at its next
//     position, the engine runs at most the one batch it had already started, and Run returns that error,
//     once, not joined with the consequences it caused in the other stages;
//   - the caller's context (an interrupt) stops the run the same way, and Run returns its cause;
//   - an input error (a read failure, a label that cannot be read, a bad record under Strict) ends the input:
//     the batches read before it are still run and consumed, in order, and Run then returns it.
//
// Whatever the outcome, Run calls Sink.Close exactly once, after the last Consume, so a sink commits what is
// complete (and only that) whether the run finished, failed or was interrupted.
//
// The package knows nothing of output files or flags: writing a batch directory, fitting probes or comparing
// networks are sinks supplied by the command layer.
package pipeline
