// WebSocket text frames from the server (RFC 6455 section 5.2: FIN set, opcode 1, unmasked) built
// as latin1 strings, so that a batch of replies leaves in one socket write instead of a header and
// a payload buffer per message through the `ws` library's sender.
//
// A frame is its header bytes as latin1 characters followed by the message. That is the message's
// UTF-8 encoding only when every character is ASCII, so a message with any other character gets
// no frame here (null) and goes through `ws`; so does one of 64 KiB or more (an 8-byte length).

const nonAscii = /[^\x00-\x7f]/;
const twoByteLengthMin = 126;
const twoByteLengthMax = 0xffff;

/** The frame of text `message` as a latin1 string, or null when it cannot be built here. */
export function asciiTextFrame(message: string): string | null {
  const length = message.length;
  if (length > twoByteLengthMax || nonAscii.test(message)) return null;
  if (length < twoByteLengthMin) return `\x81${String.fromCharCode(length)}${message}`;
  return `\x81\x7e${String.fromCharCode(length >> 8, length & 0xff)}${message}`;
}
