// Package store writes the output directory of lczerolens's batch and
// analyse commands: per-key NPY files (or one JSON Lines file of results), a
// positions index, an errors log and a manifest, committed in chunks so that a
// killed run resumes where its last commit left off and finishes with files
// byte-identical to an uninterrupted run. Merge joins the directories of the
// shards of one run into the directory the whole run writes.
//
// Layout of a directory (see Writer for the commit protocol):
//
//	manifest.json    what the directory holds; "complete" is false until Close
//	progress.json    committed counts and byte lengths, the source of truth on resume
//	positions.jsonl  one {"source","record","game","ply","fen","move"} object per position, row i = position i
//	errors.jsonl     one {"source","record","game","line","reason"} object per bad input record
//	KEY.npy          format npy: one float32 file per result key, positions stacked on axis 0
//	results.jsonl    format json: one {"position":{...},"results":{KEY:{"dtype","shape","data"}}} per position
//	.lczerolens.lock held (flock) by the one process writing the directory; removed by Close and Abort
//
// In the json format NaN and infinities are written as the strings "NaN",
// "Infinity" and "-Infinity"; the manifest's "nonfinite" counts them (in both
// formats) so a reader knows whether to expect them.
//
// The files: options.go (what Open is asked for and its validation), writer.go
// (the Writer and its commit protocol), manifest.go (the Manifest type, read,
// written and compared by Differences), files.go (append-only streams and
// atomic replacement), lock.go (the directory lock), merge.go and json.go.
package store
