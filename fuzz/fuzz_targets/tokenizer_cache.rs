#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| utk::fuzzing::tokenizer_cache(data));
