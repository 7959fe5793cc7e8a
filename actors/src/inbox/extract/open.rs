//! The byte layer of extract: opening a file (gunzipped if named `.gz`, the BOM
//! skipped, its bytes counted for progress), and the one pass over a whole file
//! before anything loads: its SHA-256 and size and the structural checks.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::inbox::failure::FileFailure;
use crate::inbox::naming::{FileType, Format};
use crate::limits::IMPORT_READ_BUFFER_BYTES;

/// What [`inspect`] learnt about a whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    pub sha256: [u8; 32],
    pub bytes: u64,
}

/// One pass over the whole file before any loading: its SHA-256 and size, and the
/// structural checks (gzip intact, UTF-8 throughout, a CSV header, a JSON array
/// that opens and closes).
pub fn inspect(path: &Path, ty: FileType) -> Result<FileFacts, FileFailure> {
    let file = File::open(path)?;
    let hasher = HashingReader {
        inner: file,
        hash: Sha256::new(),
        bytes: 0,
    };
    let mut raw = BufReader::with_capacity(IMPORT_READ_BUFFER_BYTES, hasher);
    let mut checker = Utf8Checker::default();
    let mut buf = vec![0u8; IMPORT_READ_BUFFER_BYTES];
    {
        let mut decoded: Box<dyn Read> = if ty.gzip {
            Box::new(MultiGzDecoder::new(&mut raw))
        } else {
            Box::new(&mut raw)
        };
        loop {
            let n = decoded.read(&mut buf).map_err(|e| {
                if ty.gzip {
                    FileFailure::BadGzip(e.to_string())
                } else {
                    FileFailure::Unreadable(e.to_string())
                }
            })?;
            if n == 0 {
                break;
            }
            checker.feed(&buf[..n])?;
        }
    }
    checker.finish(ty.format)?;
    // Anything after the gzip stream was read by the decoder; make sure the hash
    // covers every byte of the file.
    io::copy(&mut raw, &mut io::sink())?;
    let hasher = raw.into_inner();
    Ok(FileFacts {
        sha256: hasher.hash.finalize().into(),
        bytes: hasher.bytes,
    })
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Streaming checks over the decoded text.
#[derive(Default)]
struct Utf8Checker {
    offset: u64,
    carry: Vec<u8>,
    first_significant: Option<u8>,
    last_significant: Option<u8>,
    any_newline_after_text: bool,
    seen_text: bool,
}

impl Utf8Checker {
    fn feed(&mut self, chunk: &[u8]) -> Result<(), FileFailure> {
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(chunk);
        let valid = match std::str::from_utf8(&data) {
            Ok(_) => data.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => {
                return Err(FileFailure::NotUtf8 {
                    offset: self.offset + e.valid_up_to() as u64,
                });
            }
        };
        let text = &data[..valid];
        let start = if self.offset == 0 && text.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        for &b in &text[start..] {
            if !b.is_ascii_whitespace() {
                self.first_significant.get_or_insert(b);
                self.last_significant = Some(b);
                self.seen_text = true;
            } else if b == b'\n' && self.seen_text {
                self.any_newline_after_text = true;
            }
        }
        self.offset += valid as u64;
        self.carry = data[valid..].to_vec();
        Ok(())
    }

    fn finish(self, format: Format) -> Result<(), FileFailure> {
        if !self.carry.is_empty() {
            return Err(FileFailure::EndsInsideCharacter {
                offset: self.offset,
            });
        }
        match format {
            Format::JsonArray => {
                if self.first_significant != Some(b'[') {
                    return Err(FileFailure::NotAnArray);
                }
                if self.last_significant != Some(b']') {
                    return Err(FileFailure::ArrayNotClosed);
                }
            }
            Format::Csv if self.first_significant.is_none() => {
                return Err(FileFailure::EmptyCsv);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Opens a file for reading: buffered, gunzipped if needed, BOM skipped. `progress`
/// counts the file's bytes read so far (compressed bytes for gzip).
pub fn open(
    path: &Path,
    gzip: bool,
    progress: Arc<AtomicU64>,
) -> io::Result<Box<dyn BufRead + Send>> {
    let file = CountingReader {
        inner: File::open(path)?,
        count: progress,
    };
    let raw = BufReader::with_capacity(IMPORT_READ_BUFFER_BYTES, file);
    let mut reader: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(
            IMPORT_READ_BUFFER_BYTES,
            MultiGzDecoder::new(raw),
        ))
    } else {
        Box::new(raw)
    };
    if reader.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    Ok(reader)
}

struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::naming::Kind;

    #[test]
    fn inspect_checks_structure_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let ty = |format, gzip| FileType {
            kind: Kind::Products,
            format,
            gzip,
        };
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let ok = write("a.json", b"[{\"name\":\"x\"}]\n");
        let facts = inspect(&ok, ty(Format::JsonArray, false)).unwrap();
        assert_eq!(facts.bytes, 15);
        assert_eq!(
            facts.sha256,
            <[u8; 32]>::from(Sha256::digest(b"[{\"name\":\"x\"}]\n"))
        );
        assert!(
            inspect(&write("b.json", b"{}"), ty(Format::JsonArray, false))
                .unwrap_err()
                .to_string()
                .contains("not an array")
        );
        assert!(
            inspect(&write("c.json", b"[{}"), ty(Format::JsonArray, false))
                .unwrap_err()
                .to_string()
                .contains("not closed")
        );
        assert!(
            inspect(
                &write("d.csv", b"name,price\n\xff,1\n"),
                ty(Format::Csv, false)
            )
            .unwrap_err()
            .to_string()
            .contains("not UTF-8")
        );
        assert!(
            inspect(&write("e.csv", b"  \n"), ty(Format::Csv, false))
                .unwrap_err()
                .to_string()
                .contains("no header")
        );
        assert!(
            inspect(
                &write("f.csv.gz", b"not gzip at all"),
                ty(Format::Csv, true)
            )
            .unwrap_err()
            .to_string()
            .contains("bad gzip")
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, "name,price\né,1\n".as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        assert!(inspect(&write("g.csv.gz", &bytes), ty(Format::Csv, true)).is_ok());
        assert!(
            inspect(
                &write("h.csv.gz", &bytes[..bytes.len() - 6]),
                ty(Format::Csv, true)
            )
            .is_err()
        );
        assert!(
            inspect(
                &write("i.csv", "name\u{feff},x\n".as_bytes()),
                ty(Format::Csv, false)
            )
            .is_ok()
        );
    }
}
