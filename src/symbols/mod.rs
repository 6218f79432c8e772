//! Native and kernel symbolization (blazesym).
//!
//! User addresses are symbolized by file, not by process: the caller turns a
//! runtime address into the address stated in the ELF file, so the answer can
//! be cached per (file, address) and keeps working after the process exits.

mod kallsyms_cache;

use std::cell::OnceCell;

use blazesym::MaybeDefault;
use blazesym::symbolize::source::{Elf, Kernel, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};

use crate::process::elf_file::ElfFile;

pub struct Symbols {
    symbolizer: Symbolizer,
    /// Made at the first kernel address: a recording of user code alone
    /// never reads the kernel's symbols.
    kernel: OnceCell<Source<'static>>,
}

impl Default for Symbols {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbols {
    pub fn new() -> Self {
        Symbols {
            // Function names are all a frame needs here; line tables of
            // native code would cost time and memory on every new address.
            // Demangling is ours (see `demangle`): blazesym's reads any name,
            // so a C function called `a` came out as "signed char".
            symbolizer: Symbolizer::builder()
                .enable_code_info(false)
                .enable_inlined_fns(false)
                .enable_demangling(false)
                .build(),
            kernel: OnceCell::new(),
        }
    }

    /// The function containing `svma` (an address as stated in the file).
    pub fn user(&self, file: &ElfFile, svma: u64) -> Option<String> {
        let src = Source::Elf(Elf {
            debug_syms: false,
            ..Elf::new(file.symbol_path())
        });
        match self
            .symbolizer
            .symbolize_single(&src, Input::VirtOffset(svma))
        {
            Ok(Symbolized::Sym(sym)) => Some(demangle(&sym.name)),
            _ => None,
        }
    }

    /// The kernel function containing `addr`.
    pub fn kernel(&self, addr: u64) -> Option<String> {
        let kernel = self.kernel.get_or_init(|| {
            Source::Kernel(Kernel {
                kallsyms: kallsyms_cache::cached_kallsyms()
                    .map_or(MaybeDefault::Default, MaybeDefault::Some),
                vmlinux: MaybeDefault::None,
                debug_syms: false,
                ..Default::default()
            })
        });
        match self
            .symbolizer
            .symbolize_single(kernel, Input::AbsAddr(addr))
        {
            Ok(Symbolized::Sym(sym)) => Some(sym.name.into_owned()),
            _ => None,
        }
    }
}

/// Demangles C++ (`_Z...`) and Rust (`_R...`, or legacy `_ZN...17h<hash>E`)
/// names; every other name is returned as it is.
pub fn demangle(name: &str) -> String {
    if !name.starts_with("_Z") && !name.starts_with("_R") {
        return name.to_string();
    }
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        return format!("{d:#}");
    }
    cpp_demangle::Symbol::new(name)
        .ok()
        .and_then(|s| s.demangle().ok())
        .unwrap_or_else(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::demangle;

    #[test]
    fn demangles_only_mangled_names() {
        assert_eq!(demangle("a"), "a");
        assert_eq!(demangle("b"), "b");
        assert_eq!(demangle("_ZN3foo3barEv"), "foo::bar()");
        assert_eq!(
            demangle("_ZN3std2rt10lang_start17h0123456789abcdefE"),
            "std::rt::lang_start"
        );
        assert_eq!(demangle("_Znot mangled"), "_Znot mangled");
    }
}
