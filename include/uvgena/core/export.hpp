// UVGENA_API: what libuvgena.so exports.
//
// The library is compiled with -fvisibility=hidden (and -fvisibility-inlines-hidden), so a
// symbol leaves libuvgena.so only if its declaration in include/uvgena/ carries UVGENA_API:
// every public class (its members, nested classes, vtable and typeinfo with it) and every
// public free function, including the `detail` ones that the headers' templates and inline
// code call. What is declared only under src/ (the listener's and subscriptions' internals,
// the XML tree, the publisher's and the network layer's internals) and the llhttp built into
// the library stay inside it: they are not part of the ABI and cannot clash with a program's
// own symbols. A program needs no flag: UVGENA_API means "default visibility" on its side
// too, which is what it has anyway.
//
// It is written in the standard attribute syntax so that it can follow [[nodiscard]] after
// `class` (g++ rejects __attribute__ there). It goes first on a function declaration (after
// any other [[...]]) and after `class`/`struct` on a class. A standard attribute cannot go on
// a friend declaration: a friend function defined in the library carries UVGENA_API on its
// definition instead (operator== of SocketAddress and of http::Headers).
//
// UVGENA_STATIC (set by the build for the static library of a meson subproject) makes it
// empty: linked into a parent's shared library, uvgena then exports nothing from it.
#pragma once

#if defined(UVGENA_STATIC)
#define UVGENA_API
#elif defined(__GNUC__) || defined(__clang__)
#define UVGENA_API [[gnu::visibility("default")]]
#else
#define UVGENA_API
#endif

// UVGENA_LOCAL: keeps a member of an exported class inside the library. A class marked
// UVGENA_API exports all its members, nested classes included; the private pieces that only
// the library uses, and that name types declared only under src/ (a pimpl `struct Impl;`,
// a constructor from the internal state), carry UVGENA_LOCAL so that they stay hidden.
#if defined(__GNUC__) || defined(__clang__)
#define UVGENA_LOCAL [[gnu::visibility("hidden")]]
#else
#define UVGENA_LOCAL
#endif
