// Package board owns the chess side of lczerolens: positions (FEN/EPD), legal
// move generation, UCI and SAN moves, games with lc0-compatible history and
// repetition tracking, a streaming PGN reader, the encoding of a position into
// lc0's 112 input planes (the classical format and the castling-plane and
// canonical formats 2-5, see Game.EncodeFormat), and lc0's 1858-entry policy
// index, also under the canonical transforms (PolicyIndexT).
//
// Everything follows lc0's own conventions (src/chess and src/neural/encoder.cc
// of LeelaChessZero/lc0) so that planes and policy indices match lc0 bit for
// bit; see Game.Encode and PolicyIndex for the details that matter.
//
// Only standard chess is supported: Chess960 castling and variants are
// rejected with errors, never guessed.
package board
