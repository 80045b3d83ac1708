//! The only raw-pointer code of the module: nginx's header filter chain, the switch of an
//! upstream answer to nginx's upgraded relay, the `recv`/`send` interposition that carries
//! half-closes, the shared counters zone, variables, the status handler, and the access-phase
//! handler that decides requests in the worker ([`crate::decide`] holds the decision).
//!
//! How a hijack is carried, without patching nginx:
//! 1. `ngx_http_upstream_send_response()` calls `ngx_http_send_header()` *before* it looks at
//!    `u->upgrade`. Our header filter runs first in the chain (dynamic modules load last), so
//!    for a `200` hijack it sets `u->upgrade` and nginx enters its upgraded relay as it does
//!    for a `101`.
//! 2. The upgraded relay ends everything at the first EOF it sees, and it sees EOFs only
//!    through the connections' `recv`. We interpose on `recv`/`send` of both connections of a
//!    hijacked request: an EOF is hidden and turned into `shutdown(SHUT_WR)` on the other
//!    connection once the bytes read before it are written ([`crate::tunnel`] decides).
//!
//! Invariants relied on (nginx 1.22 to 1.28):
//! - during the relay, `c->data` of the client connection and of the upstream connection is the
//!   main request (`ngx_http_upstream_connect()` sets the latter; the former is HTTP/1.x's);
//! - the relay's buffers fill only through `src->recv` and drain only through `dst->send`;
//! - the upstream connection is closed by `ngx_http_upstream_finalize_request()` before the
//!   request pool is destroyed, and `ngx_get_connection()` gives a reused `ngx_connection_t`
//!   fresh `recv`/`send` pointers, so only the client connection needs restoring.

use core::ffi::{c_char, c_void};
use core::mem;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::ffi::{
    ngx_array_push, ngx_buf_t, ngx_chain_t, ngx_command_t, ngx_conf_log_error, ngx_conf_t,
    ngx_connection_t, ngx_create_temp_buf, ngx_hash_elt_t, ngx_hash_key, ngx_http_add_variable,
    ngx_http_core_loc_conf_t, ngx_http_core_main_conf_t, ngx_http_core_module,
    ngx_http_discard_request_body, ngx_http_finalize_request, ngx_http_get_indexed_variable,
    ngx_http_get_variable, ngx_http_get_variable_index, ngx_http_header_handler_pt,
    ngx_http_header_t, ngx_http_named_location, ngx_http_output_filter,
    ngx_http_output_header_filter_pt, ngx_http_phases_NGX_HTTP_ACCESS_PHASE, ngx_http_request_t,
    ngx_http_send_header, ngx_http_top_header_filter, ngx_http_upstream_t,
    ngx_http_variable_value_t, ngx_int_t, ngx_list_push, ngx_palloc, ngx_pcalloc, ngx_pnalloc,
    ngx_pool_cleanup_add, ngx_recv_pt, ngx_send_pt, ngx_shared_memory_add, ngx_shm_zone_t,
    ngx_slab_calloc, ngx_slab_pool_t, ngx_str_t, ngx_table_elt_t, ngx_uint_t, shutdown,
    SSL_shutdown, AF_UNIX, NGX_AGAIN, NGX_DECLINED, NGX_DONE, NGX_ERROR, NGX_HTTP_GET,
    NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_ALLOWED, NGX_HTTP_VAR_CHANGEABLE,
    NGX_HTTP_VAR_NOCACHEABLE, NGX_HTTP_VERSION_11, NGX_LOG_EMERG, NGX_OK, SHUT_WR,
};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf};
use ngx::ngx_string;

use crate::conf::{parse_flag, parse_hand_over, LocConf, MainConf, Vars};
use crate::decide::{answer, has_body, Answer};
use crate::hijack::{classify, Hijack, Response};
use crate::metrics::{Counters, Decision};
use crate::module::{ngx_http_dockgate_module, Module};
use crate::tunnel::{Dir, OnEof, OnSent, Tunnel};
use dockgate_decision::config::Config;
use dockgate_decision::decide::Head;
use dockgate_decision::identity::Transport;

/// The next header filter in nginx's chain, saved when ours is installed.
static mut NEXT_HEADER_FILTER: ngx_http_output_header_filter_pt = None;

/// The counters in the `dockgate` shared zone; null until the zone is initialised.
static COUNTERS: AtomicPtr<Counters> = AtomicPtr::new(ptr::null_mut());

/// Size of the shared zone: one slab page pool holding a [`Counters`].
const ZONE_SIZE: usize = 64 * 1024;

/// The shared zone's name. It changes with the layout of [`Counters`], so that a reload
/// with a newer module never takes over counters laid out by an older one.
const ZONE_NAME: ngx_str_t = ngx_string!("dockgate_counters_v2");

fn counters() -> Option<&'static Counters> {
    // SAFETY: the pointer is null or points into the shared zone, mapped for the life of
    // every process that can read this static.
    unsafe { COUNTERS.load(Ordering::Relaxed).as_ref() }
}

// === impl directives ===

/// `dockgate on|off;`
pub(crate) unsafe extern "C" fn set_dockgate(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: `conf` is this module's location conf, created by `create_loc_conf`; the
    // directive takes one argument (NGX_CONF_FLAG).
    let Some((conf, value)) = (unsafe { directive::<LocConf>(cf, conf) }) else {
        return conf_error(c"invalid arguments");
    };
    if conf.enable.is_some() {
        return conf_error(c"is duplicate");
    }
    match parse_flag(str_bytes(value)) {
        Some(on) => {
            conf.enable = Some(on);
            NGX_CONF_OK
        }
        None => conf_error(c"invalid value: it must be \"on\" or \"off\""),
    }
}

/// `dockgate_status;`
pub(crate) unsafe extern "C" fn set_dockgate_status(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: during location parsing, `cf.ctx` is an `ngx_http_conf_ctx_t` whose
    // `loc_conf[ngx_http_core_module.ctx_index]` is the core module's location conf.
    let clcf = unsafe {
        let ctx = (*cf).ctx.cast::<ngx::ffi::ngx_http_conf_ctx_t>();
        (*(*ctx).loc_conf.add(ngx_http_core_module.ctx_index)).cast::<ngx_http_core_loc_conf_t>()
    };
    // SAFETY: `clcf` was just read from a live configuration context.
    let Some(clcf) = (unsafe { clcf.as_mut() }) else {
        return conf_error(c"no location configuration");
    };
    if clcf.handler.is_some() {
        return conf_error(c"is duplicate");
    }
    clcf.handler = Some(status_handler);
    NGX_CONF_OK
}

/// `dockgate_policy FILE;` (http): the gateway's configuration, read as the sidecar reads it.
/// Every problem fails the configuration test with its line and key.
pub(crate) unsafe extern "C" fn set_dockgate_policy(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: `conf` is this module's main conf, created by `create_main_conf`; the
    // directive takes one argument (NGX_CONF_TAKE1).
    let Some((main, file)) = (unsafe { directive::<MainConf>(cf, conf) }) else {
        return conf_error(c"invalid arguments");
    };
    if main.policy.is_some() {
        return conf_error(c"is duplicate");
    }
    let path = String::from_utf8_lossy(str_bytes(file)).into_owned();
    let loaded = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {path}: {e}"))
        .and_then(|text| Config::parse(&path, &text).map_err(|e| e.to_string()));
    match loaded {
        Ok(policy) => {
            main.policy = Some(policy);
            NGX_CONF_OK
        }
        Err(message) => {
            // SAFETY: `cf` is live; the message is a NUL-terminated copy nginx formats with
            // `%s` before this function returns.
            unsafe { log_conf_error(cf, &message) };
            NGX_CONF_ERROR
        }
    }
}

/// `dockgate_decide @name|off;` (location)
pub(crate) unsafe extern "C" fn set_dockgate_decide(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY:
    // - `conf` is this module's location conf, created by `create_loc_conf`; the directive
    //   takes one argument (NGX_CONF_TAKE1);
    // - during location parsing, `cf.ctx` is an `ngx_http_conf_ctx_t` whose `main_conf` holds
    //   this module's `MainConf`.
    let (parsed, main) = unsafe {
        let ctx = (*cf).ctx.cast::<ngx::ffi::ngx_http_conf_ctx_t>();
        let main = (*(*ctx).main_conf.add(ngx_http_dockgate_module.ctx_index))
            .cast::<MainConf>()
            .as_ref();
        (directive::<LocConf>(cf, conf), main)
    };
    let (Some((conf, value)), Some(main)) = (parsed, main) else {
        return conf_error(c"invalid arguments");
    };
    if conf.decide.is_some() {
        return conf_error(c"is duplicate");
    }
    let Some(hand_over) = parse_hand_over(str_bytes(value)) else {
        return conf_error(c"invalid value: it must name a location (\"@sidecar\") or be \"off\"");
    };
    if hand_over.is_some() && main.policy.is_none() {
        return conf_error(c"needs \"dockgate_policy\" earlier in the http block");
    }
    conf.decide = Some(hand_over);
    NGX_CONF_OK
}

/// A one-argument directive's configuration struct and its argument.
///
/// # Safety
/// `cf` is the live configuration context of the directive, and `conf` the configuration
/// struct of type `T` nginx passes to its handler.
unsafe fn directive<'a, T>(
    cf: *mut ngx_conf_t,
    conf: *mut c_void,
) -> Option<(&'a mut T, &'a ngx_str_t)> {
    // SAFETY: per the contract; `cf.args` is an array of `ngx_str_t` (name, then arguments).
    unsafe {
        let conf = conf.cast::<T>().as_mut()?;
        match (*cf).args.as_ref()?.as_slice::<ngx_str_t>() {
            [_, value] => Some((conf, value)),
            _ => None,
        }
    }
}

/// Logs a configuration error at the directive being parsed.
unsafe fn log_conf_error(cf: *mut ngx_conf_t, message: &str) {
    let text = std::ffi::CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: `cf` is live; `%s` reads the NUL-terminated `text`.
    unsafe {
        ngx_conf_log_error(
            NGX_LOG_EMERG as ngx_uint_t,
            cf,
            0,
            c"%s".as_ptr(),
            text.as_ptr(),
        );
    }
}

// === impl configuration hooks ===

const VAR_HIJACK: ngx_str_t = ngx_string!("dockgate_hijack");
const VAR_HALF_CLOSE: ngx_str_t = ngx_string!("dockgate_half_close");

/// The variables a decision reads (`$dockgate_listener`, which `set` gives a value) and writes
/// (the rest; `auth_request_set` writes the same ones in the sidecar's location). Unset, they
/// are empty.
const DECISION_VARS: [ngx_str_t; 8] = [
    ngx_string!("dockgate_listener"),
    ngx_string!("dockgate_uri"),
    ngx_string!("dockgate_upstream"),
    ngx_string!("dockgate_user"),
    ngx_string!("dockgate_role"),
    ngx_string!("dockgate_status"),
    ngx_string!("dockgate_error"),
    ngx_string!("dockgate_decision"),
];

/// Registers `$dockgate_hijack`, `$dockgate_half_close` and the decision variables.
pub(crate) unsafe fn add_variables(cf: *mut ngx_conf_t) -> ngx_int_t {
    for name in DECISION_VARS {
        let mut name = name;
        // SAFETY: `cf` is live; nginx copies the name into its own pool. Changeable, so that
        // `set` and `auth_request_set` may declare and write them too.
        let var =
            unsafe { ngx_http_add_variable(cf, &mut name, NGX_HTTP_VAR_CHANGEABLE as ngx_uint_t) };
        // SAFETY: a non-null result is a variable owned by the configuration.
        let Some(var) = (unsafe { var.as_mut() }) else {
            return NGX_ERROR as ngx_int_t;
        };
        var.get_handler = Some(unset_variable);
    }
    for (name, getter) in [
        (VAR_HIJACK, hijack_variable as VarGetter),
        (VAR_HALF_CLOSE, half_close_variable as VarGetter),
    ] {
        let mut name = name;
        // SAFETY: `cf` is live; nginx copies the name into its own pool.
        let var =
            unsafe { ngx_http_add_variable(cf, &mut name, NGX_HTTP_VAR_NOCACHEABLE as ngx_uint_t) };
        // SAFETY: a non-null result is a variable owned by the configuration.
        let Some(var) = (unsafe { var.as_mut() }) else {
            return NGX_ERROR as ngx_int_t;
        };
        var.get_handler = Some(getter);
    }
    NGX_OK as ngx_int_t
}

/// Installs the header filter and declares the shared counters zone.
pub(crate) unsafe fn init_http(cf: *mut ngx_conf_t) -> ngx_int_t {
    // SAFETY: postconfiguration runs single-threaded in the master, before any request;
    // this is how every nginx filter module chains itself.
    unsafe {
        NEXT_HEADER_FILTER = ngx_http_top_header_filter;
        ngx_http_top_header_filter = Some(header_filter);
    }

    let mut name = ZONE_NAME;
    // SAFETY: `cf` is live; the tag is the module's static, identical across reloads, so
    // nginx hands the same zone (and counters) to the new cycle.
    let zone: *mut ngx_shm_zone_t = unsafe {
        ngx_shared_memory_add(
            cf,
            &mut name,
            ZONE_SIZE,
            ptr::addr_of_mut!(ngx_http_dockgate_module).cast(),
        )
    };
    // SAFETY: a non-null zone is owned by the cycle being configured.
    let Some(zone) = (unsafe { zone.as_mut() }) else {
        return NGX_ERROR as ngx_int_t;
    };
    zone.init = Some(init_zone);

    // SAFETY: `cf` is the `http` block's context; its headers_in hash is built already.
    unsafe { accept_empty_host_on_unix_sockets(cf) };
    // SAFETY: as above; the phase handler arrays exist until the phase engine is built.
    unsafe { init_decisions(cf) }
}

/// Installs the access-phase handler and records the decision variables' indices.
unsafe fn init_decisions(cf: *mut ngx_conf_t) -> ngx_int_t {
    // SAFETY: `cf.ctx` is the `http` block's `ngx_http_conf_ctx_t`; its main confs are the
    // core module's and ours; variables may be indexed until `ngx_http_variables_init_vars()`,
    // which runs after postconfiguration.
    unsafe {
        let ctx = (*cf).ctx.cast::<ngx::ffi::ngx_http_conf_ctx_t>();
        let main = (*(*ctx).main_conf.add(ngx_http_dockgate_module.ctx_index)).cast::<MainConf>();
        let Some(main) = main.as_mut() else {
            return NGX_ERROR as ngx_int_t;
        };
        let mut index = [0usize; 8];
        for (slot, name) in index.iter_mut().zip(DECISION_VARS) {
            let mut name = name;
            let i = ngx_http_get_variable_index(cf, &mut name);
            if i < 0 {
                return NGX_ERROR as ngx_int_t;
            }
            *slot = i as usize;
        }
        let [listener, uri, upstream, user, role, status, error, decision] = index;
        main.vars = Vars {
            listener,
            uri,
            upstream,
            user,
            role,
            status,
            error,
            decision,
        };

        let cmcf = (*(*ctx).main_conf.add(ngx_http_core_module.ctx_index))
            .cast::<ngx_http_core_main_conf_t>();
        let Some(cmcf) = cmcf.as_mut() else {
            return NGX_ERROR as ngx_int_t;
        };
        let phase = &mut cmcf.phases[ngx_http_phases_NGX_HTTP_ACCESS_PHASE as usize];
        let h = ngx_array_push(&mut phase.handlers).cast::<ngx::ffi::ngx_http_handler_pt>();
        let Some(h) = h.as_mut() else {
            return NGX_ERROR as ngx_int_t;
        };
        *h = Some(access_handler);
    }
    NGX_OK as ngx_int_t
}

/// Places the counters in the zone, or takes over the previous cycle's on reload.
unsafe extern "C" fn init_zone(zone: *mut ngx_shm_zone_t, old: *mut c_void) -> ngx_int_t {
    // SAFETY: nginx calls this with the zone it declared for us, mapped and slab-initialised.
    let zone = unsafe { &mut *zone };
    let counters = if old.is_null() {
        // SAFETY: `shm.addr` starts with the slab pool nginx initialised for this zone.
        unsafe {
            ngx_slab_calloc(
                zone.shm.addr.cast::<ngx_slab_pool_t>(),
                mem::size_of::<Counters>(),
            )
        }
    } else {
        old
    };
    if counters.is_null() {
        return NGX_ERROR as ngx_int_t;
    }
    // Zeroed memory is a valid `Counters` (all atomics at 0).
    zone.data = counters;
    COUNTERS.store(counters.cast(), Ordering::Relaxed);
    NGX_OK as ngx_int_t
}

// === impl empty Host on unix sockets ===

/// nginx's own `Host` header handler, saved when ours replaces it in a cycle's hash.
static mut ORIGINAL_HOST_HANDLER: ngx_http_header_handler_pt = None;

/// The authority given to requests that arrive on a unix socket with an empty `Host`.
const UNIX_SOCKET_HOST: &str = "localhost";

/// Docker's Go clients send `Host:` with an empty value on hijack requests over unix sockets
/// (RFC 9112 allows it when the target has no authority), and nginx answers `400 client sent
/// invalid host header`. For this cycle only, point the `host` entry of the request header
/// hash at a copy of nginx's entry whose handler first gives such requests a host name. The
/// shared `ngx_http_headers_in` table is left untouched, so a later cycle without the module
/// is unaffected. If the hash does not look as expected, nothing is changed.
unsafe fn accept_empty_host_on_unix_sockets(cf: *mut ngx_conf_t) {
    // SAFETY:
    // - `cf.ctx` is the `http` block's `ngx_http_conf_ctx_t`, and the core module's main conf
    //   holds `headers_in_hash`, built before postconfiguration (ngx_http_block());
    // - hash elements are laid out as `ngx_hash_init()` writes them: `value`, `len`, then
    //   `len` name bytes, the next element aligned to a pointer;
    // - the copy lives in the cycle's pool, as long as the hash that points at it.
    unsafe {
        let ctx = (*cf).ctx.cast::<ngx::ffi::ngx_http_conf_ctx_t>();
        let cmcf = (*(*ctx).main_conf.add(ngx_http_core_module.ctx_index))
            .cast::<ngx_http_core_main_conf_t>();
        let Some(cmcf) = cmcf.as_mut() else {
            return;
        };
        let hash = &cmcf.headers_in_hash;
        if hash.buckets.is_null() || hash.size == 0 {
            return;
        }
        let mut name = *b"host";
        let key = ngx_hash_key(name.as_mut_ptr(), name.len());
        let mut elt = *hash.buckets.add(key % hash.size);
        if elt.is_null() {
            return;
        }
        while !(*elt).value.is_null() {
            let len = usize::from((*elt).len);
            let elt_name = core::slice::from_raw_parts((*elt).name.as_ptr(), len);
            if elt_name == b"host" {
                break;
            }
            let next = (*elt).name.as_ptr().add(len) as usize;
            let align = mem::size_of::<*mut c_void>();
            elt = ((next + align - 1) & !(align - 1)) as *mut ngx_hash_elt_t;
        }
        let original = (*elt).value.cast::<ngx_http_header_t>();
        let Some(original) = original.as_ref() else {
            return;
        };
        let copy =
            ngx_palloc((*cf).pool, mem::size_of::<ngx_http_header_t>()).cast::<ngx_http_header_t>();
        if copy.is_null() {
            return;
        }
        copy.write(ngx_http_header_t {
            handler: Some(empty_host_handler),
            ..*original
        });
        ORIGINAL_HOST_HANDLER = original.handler;
        (*elt).value = copy.cast();
    }
}

unsafe extern "C" fn empty_host_handler(
    r: *mut ngx_http_request_t,
    h: *mut ngx_table_elt_t,
    offset: ngx_uint_t,
) -> ngx_int_t {
    // SAFETY: nginx calls header handlers with the live request and the header just parsed;
    // the saved handler is nginx's own, set before this one could be installed.
    unsafe {
        let c = &*(*r).connection;
        let on_unix_socket =
            !c.sockaddr.is_null() && i32::from((*c.sockaddr).sa_family) == AF_UNIX as i32;
        if (*h).value.len == 0 && on_unix_socket {
            (*h).value = ngx_str_t {
                len: UNIX_SOCKET_HOST.len(),
                data: UNIX_SOCKET_HOST.as_ptr().cast_mut(),
            };
        }
        match ORIGINAL_HOST_HANDLER {
            Some(original) => original(r, h, offset),
            None => NGX_OK as ngx_int_t,
        }
    }
}

// === impl header filter ===

/// Per-request state of a hijacked stream, in the request pool.
struct Stream {
    kind: Hijack,
    tunnel: Tunnel,
    client: *mut ngx_connection_t,
    upstream: *mut ngx_connection_t,
    client_recv: ngx_recv_pt,
    client_send: ngx_send_pt,
    upstream_recv: ngx_recv_pt,
    upstream_send: ngx_send_pt,
}

unsafe extern "C" fn header_filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls header filters with a live request; NEXT_HEADER_FILTER was set
    // before this filter could be called.
    let (r, next) = unsafe { (&mut *r, NEXT_HEADER_FILTER) };
    let Some(next) = next else {
        return NGX_ERROR as ngx_int_t;
    };
    // SAFETY: a non-null `r.upstream` is this request's upstream.
    let upstream = unsafe { r.upstream.as_mut() };
    let enabled = Module::location_conf(&*r).is_some_and(LocConf::enabled);
    let (Some(u), true) = (upstream, enabled) else {
        // SAFETY: passing the request on unchanged.
        return unsafe { next(r) };
    };
    if !ptr::eq(r, r.main) || r.http_version > NGX_HTTP_VERSION_11 as ngx_uint_t {
        // Subrequests and HTTP/2 streams cannot be upgraded.
        // SAFETY: as above.
        return unsafe { next(r) };
    }

    let resp = Response {
        status: r.headers_out.status,
        upgrade_accepted: u.upgrade() != 0,
        content_type: str_bytes(&r.headers_out.content_type),
        has_content_length: r.headers_out.content_length_n >= 0,
        chunked: u.headers_in.chunked() != 0,
        path: str_bytes(&r.uri),
    };
    let Some(kind) = classify(&resp) else {
        // SAFETY: as above.
        return unsafe { next(r) };
    };

    let rc = if kind == Hijack::Upgrade {
        // SAFETY: as above.
        unsafe { next(r) }
    } else {
        // A 200 hijack: have nginx relay it as it relays a 101, never reuse the upstream
        // connection, and answer without chunking or keep-alive.
        u.set_upgrade(1);
        u.set_keepalive(0);
        r.set_keepalive(0);
        // SAFETY: `r` is live; see `without_chunking`.
        unsafe { without_chunking(r, next) }
    };
    if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t {
        return rc;
    }
    // SAFETY: the header is out; nginx switches to the upgraded relay right after we return.
    if unsafe { start_stream(r, u, kind) }.is_none() {
        return NGX_ERROR as ngx_int_t;
    }
    rc
}

/// Calls the rest of the header filter chain with chunked transfer encoding off, so the
/// chunked filter marks the response "delimited by close" instead of adding
/// `Transfer-Encoding`: a hijacked stream carries raw bytes.
unsafe fn without_chunking(
    r: &mut ngx_http_request_t,
    next: unsafe extern "C" fn(*mut ngx_http_request_t) -> ngx_int_t,
) -> ngx_int_t {
    // SAFETY:
    // - `r.loc_conf[ngx_http_core_module.ctx_index]` is the core location conf of `r`;
    // - a worker is single-threaded and header filters never run in thread pools, so the
    //   flag is restored before any other request can read it.
    unsafe {
        let clcf =
            (*r.loc_conf.add(ngx_http_core_module.ctx_index)).cast::<ngx_http_core_loc_conf_t>();
        let Some(clcf) = clcf.as_mut() else {
            return NGX_ERROR as ngx_int_t;
        };
        let saved = mem::replace(&mut clcf.chunked_transfer_encoding, 0);
        let rc = next(r);
        clcf.chunked_transfer_encoding = saved;
        rc
    }
}

/// Records the stream and interposes on both connections' `recv`/`send`.
unsafe fn start_stream(
    r: &mut ngx_http_request_t,
    u: &mut ngx_http_upstream_t,
    kind: Hijack,
) -> Option<()> {
    let client = r.connection;
    let upstream = u.peer.connection;
    if client.is_null() || upstream.is_null() {
        return None;
    }
    // SAFETY: both connections are live for the request; `header_in` and `u.buffer` are
    // valid buffers of this request (possibly empty).
    unsafe {
        let pending_to_upstream = buf_len(&*r.header_in);
        let pending_to_client = buf_len(&u.buffer);

        let stream = ngx_pcalloc(r.pool, mem::size_of::<Stream>()).cast::<Stream>();
        let cleanup = ngx_pool_cleanup_add(r.pool, 0);
        if stream.is_null() || cleanup.is_null() {
            return None;
        }
        stream.write(Stream {
            kind,
            tunnel: Tunnel::new(pending_to_upstream, pending_to_client),
            client,
            upstream,
            client_recv: (*client).recv,
            client_send: (*client).send,
            upstream_recv: (*upstream).recv,
            upstream_send: (*upstream).send,
        });
        *r.ctx.add(ngx_http_dockgate_module.ctx_index) = stream.cast();
        (*cleanup).handler = Some(end_stream);
        (*cleanup).data = stream.cast();

        (*client).recv = Some(client_recv);
        (*client).send = Some(client_send);
        (*upstream).recv = Some(upstream_recv);
        (*upstream).send = Some(upstream_send);
    }
    if let Some(c) = counters() {
        c.stream_started(kind);
    }
    Some(())
}

fn buf_len(b: &ngx_buf_t) -> usize {
    (b.last as usize).saturating_sub(b.pos as usize)
}

/// Request pool cleanup: the stream is over.
unsafe extern "C" fn end_stream(data: *mut c_void) {
    // SAFETY: `data` is the `Stream` registered with this cleanup; the client connection
    // outlives the request pool (it is closed after `ngx_http_free_request()`), and nothing
    // but `start_stream` replaced its `recv`/`send`, so the saved ones are current again.
    unsafe {
        let stream = &*data.cast::<Stream>();
        let client = &mut *stream.client;
        client.recv = stream.client_recv;
        client.send = stream.client_send;
    }
    if let Some(c) = counters() {
        c.stream_ended();
    }
}

// === impl recv/send interposition ===

/// The stream whose request owns connection `c`.
///
/// # Safety
/// `c` is a connection whose `recv`/`send` we replaced; see the module invariants.
unsafe fn stream_of<'a>(c: *mut ngx_connection_t) -> &'a mut Stream {
    // SAFETY: per the invariants, `c.data` is the main request, whose module ctx is the
    // `Stream` set by `start_stream` before the wrappers were installed.
    unsafe {
        let r = (*c).data.cast::<ngx_http_request_t>();
        let stream = (*(*r).ctx.add(ngx_http_dockgate_module.ctx_index)).cast::<Stream>();
        debug_assert!(!stream.is_null());
        &mut *stream
    }
}

unsafe extern "C" fn client_recv(c: *mut ngx_connection_t, buf: *mut u8, size: usize) -> isize {
    // SAFETY: installed on the client connection of a stream.
    unsafe {
        let s = stream_of(c);
        let n = call(s.client_recv, c, buf, size);
        if relay_over(c) {
            // nginx's lingering close reads the client after the relay: plain reads.
            return n;
        }
        relay_received(s, Dir::ToUpstream, n)
    }
}

unsafe extern "C" fn upstream_recv(c: *mut ngx_connection_t, buf: *mut u8, size: usize) -> isize {
    // SAFETY: installed on the upstream connection of a stream.
    unsafe {
        let s = stream_of(c);
        let n = call(s.upstream_recv, c, buf, size);
        relay_received(s, Dir::ToClient, n)
    }
}

unsafe extern "C" fn upstream_send(c: *mut ngx_connection_t, buf: *mut u8, size: usize) -> isize {
    // SAFETY: installed on the upstream connection of a stream.
    unsafe {
        let s = stream_of(c);
        let n = call(s.upstream_send, c, buf, size);
        relay_sent(s, Dir::ToUpstream, n)
    }
}

unsafe extern "C" fn client_send(c: *mut ngx_connection_t, buf: *mut u8, size: usize) -> isize {
    // SAFETY: installed on the client connection of a stream.
    unsafe {
        let s = stream_of(c);
        let n = call(s.client_send, c, buf, size);
        if relay_over(c) {
            return n;
        }
        relay_sent(s, Dir::ToClient, n)
    }
}

/// Whether the relay of the request owning client connection `c` has ended: nginx closes
/// the upstream connection and clears `u->peer.connection` when it finalizes the relay.
///
/// # Safety
/// `c` is the client connection of a stream; see the module invariants.
unsafe fn relay_over(c: *mut ngx_connection_t) -> bool {
    // SAFETY: `c.data` is the main request, alive until the request pool (and with it the
    // cleanup that removes our wrappers) is destroyed.
    unsafe {
        let r = (*c).data.cast::<ngx_http_request_t>();
        (*r).upstream
            .as_ref()
            .map_or(true, |u| u.peer.connection.is_null())
    }
}

/// Calls a saved `recv`/`send`; a missing one (never set by nginx) is an error.
unsafe fn call(f: ngx_recv_pt, c: *mut ngx_connection_t, buf: *mut u8, size: usize) -> isize {
    match f {
        // SAFETY: the saved function is nginx's own for this connection.
        Some(f) => unsafe { f(c, buf, size) },
        None => NGX_ERROR as isize,
    }
}

impl Stream {
    /// The connection a direction reads from.
    fn source(&self, dir: Dir) -> *mut ngx_connection_t {
        match dir {
            Dir::ToUpstream => self.client,
            Dir::ToClient => self.upstream,
        }
    }

    /// The connection a direction writes to.
    fn destination(&self, dir: Dir) -> *mut ngx_connection_t {
        self.source(dir.other())
    }
}

unsafe fn relay_received(s: &mut Stream, dir: Dir, n: isize) -> isize {
    if n > 0 {
        s.tunnel.received(dir, n as usize);
        if let Some(c) = counters() {
            c.bytes(dir, n as usize);
        }
        return n;
    }
    if n != 0 {
        return n; // NGX_AGAIN, or an error nginx handles as it always does.
    }
    match s.tunnel.on_eof(dir) {
        OnEof::Report => 0,
        OnEof::Hide { shut_now } => {
            // SAFETY: the source connection is live; its read event is owned by it.
            unsafe { (*(*s.source(dir)).read).set_eof(0) };
            if shut_now {
                // SAFETY: the destination connection is live.
                unsafe { shut_write(s.destination(dir), dir) };
            }
            NGX_AGAIN as isize
        }
    }
}

unsafe fn relay_sent(s: &mut Stream, dir: Dir, n: isize) -> isize {
    if n <= 0 {
        return n;
    }
    match s.tunnel.sent(dir, n as usize) {
        OnSent::Nothing => {}
        // SAFETY (both arms): the connections are live for the stream's request.
        OnSent::Shut => unsafe { shut_write(s.destination(dir), dir) },
        OnSent::ShutAndFinish => unsafe {
            shut_write(s.destination(dir), dir);
            // Both directions are done: report the hidden EOF so the relay finalizes.
            (*(*s.source(dir)).read).set_eof(1);
        },
    }
    n
}

/// Shuts the write side of `c`: a TLS `close_notify` on TLS connections (a TCP half-close
/// would cut the record stream), `shutdown(SHUT_WR)` otherwise.
unsafe fn shut_write(c: *mut ngx_connection_t, dir: Dir) {
    // SAFETY: `c` is a live connection; `c.ssl`, when set, holds its OpenSSL object.
    unsafe {
        let c = &mut *c;
        match c.ssl.as_mut() {
            Some(ssl) => {
                SSL_shutdown(ssl.connection);
            }
            None => {
                shutdown(c.fd, SHUT_WR as i32);
            }
        }
    }
    if let Some(c) = counters() {
        c.half_closed(dir);
    }
}

// === impl decisions ===

/// Decides a request in the worker (`dockgate_decide`), as `auth_request` with the sidecar
/// would: allowed requests get `$dockgate_uri`/`$dockgate_upstream`/`$dockgate_user`/
/// `$dockgate_role`, refusals `$dockgate_status`/`$dockgate_error` and a 401 or 403 for the
/// refusal page, and requests that need the engine go to the named location.
unsafe extern "C" fn access_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls phase handlers with a live main request.
    let r = unsafe { &mut *r };
    let Some(hand_over) = Module::location_conf(&*r).and_then(LocConf::hand_over) else {
        return NGX_DECLINED as ngx_int_t;
    };
    let Some(main) = Module::main_conf(&*r) else {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    };
    let (Some(policy), vars) = (main.policy.as_ref(), main.vars) else {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    };
    // SAFETY: `r` is live and `vars` are indices of this cycle's variables.
    unsafe {
        // Decided once: a request back in this location after the hand-over (an internal
        // redirect) is the sidecar's.
        if !variable(r, vars.decision).is_empty() {
            return NGX_DECLINED as ngx_int_t;
        }
        let c = &*r.connection;
        let ssl = !c.ssl.is_null();
        let verify = if ssl {
            named_variable(r, "ssl_client_verify")
        } else {
            None
        };
        let fingerprint = if ssl {
            named_variable(r, "ssl_client_fingerprint")
        } else {
            None
        };
        let peer = c.proxy_protocol.as_ref().map(|p| str_bytes(&p.src_addr));
        let listener = variable(r, vars.listener);
        let hi = &r.headers_in;
        let transport = Transport {
            listener: text(listener).unwrap_or(""),
            client_verify: verify.and_then(text),
            client_fingerprint: fingerprint.and_then(text),
            authorization: header(hi.authorization),
            peer: peer.and_then(text),
        };
        let head = Head {
            method: text(str_bytes(&r.method_name)).unwrap_or(""),
            uri: text(str_bytes(&r.unparsed_uri)).unwrap_or(""),
            content_type: header(hi.content_type),
            has_body: has_body(
                hi.content_length_n,
                hi.chunked() != 0 || !hi.transfer_encoding.is_null(),
            ),
        };
        let decided = answer(policy, &transport, &head);
        match decided {
            Answer::Allow {
                uri,
                upstream,
                user,
                role,
            } => {
                let set = [
                    (vars.uri, uri.as_str()),
                    (vars.upstream, upstream),
                    (vars.user, user.as_str()),
                    (vars.role, role.as_str()),
                    (vars.decision, "nginx"),
                ];
                if set
                    .iter()
                    .any(|(i, v)| set_variable_copy(r, *i, v).is_none())
                {
                    return NGX_ERROR as ngx_int_t;
                }
                count(Decision::Allowed);
                NGX_OK as ngx_int_t
            }
            Answer::Refuse {
                status,
                json,
                user,
                role,
            } => {
                let code = status.to_string();
                let set = [
                    (vars.status, code.as_str()),
                    (vars.error, json.as_str()),
                    (vars.user, user.as_str()),
                    (vars.role, role.as_str()),
                    (vars.decision, "nginx"),
                ];
                if set
                    .iter()
                    .any(|(i, v)| set_variable_copy(r, *i, v).is_none())
                {
                    return NGX_ERROR as ngx_int_t;
                }
                let access = Answer::access_status(status);
                if access == 401 && add_www_authenticate(r).is_none() {
                    return NGX_ERROR as ngx_int_t;
                }
                count(Decision::Refused);
                access as ngx_int_t
            }
            Answer::Sidecar => {
                if set_variable_copy(r, vars.decision, "sidecar").is_none() {
                    return NGX_ERROR as ngx_int_t;
                }
                count(Decision::Sidecar);
                let mut name = ngx_str_t {
                    len: hand_over.len(),
                    data: hand_over.as_ptr().cast_mut(),
                };
                // As `try_files` hands a request to a named location: the location runs
                // now, and this phase handler's reference is released.
                ngx_http_named_location(r, &mut name);
                ngx_http_finalize_request(r, NGX_DONE as ngx_int_t);
                NGX_DONE as ngx_int_t
            }
        }
    }
}

fn count(d: Decision) {
    if let Some(c) = counters() {
        c.decided(d);
    }
}

fn text(bytes: &[u8]) -> Option<&str> {
    core::str::from_utf8(bytes).ok()
}

/// The value of a request header nginx keeps a pointer to (the first of its name).
///
/// # Safety
/// `h` is null or a header of a live request.
unsafe fn header<'a>(h: *mut ngx_table_elt_t) -> Option<&'a str> {
    // SAFETY: per the contract.
    unsafe { h.as_ref() }.and_then(|h| text(str_bytes(&h.value)))
}

/// The value of indexed variable `index` of `r` (empty when unset).
///
/// # Safety
/// `r` is live and `index` one of this cycle's variable indices.
unsafe fn variable<'a>(r: &mut ngx_http_request_t, index: usize) -> &'a [u8] {
    // SAFETY: per the contract; the value lives in the request pool.
    unsafe {
        match ngx_http_get_indexed_variable(r, index as ngx_uint_t).as_ref() {
            Some(v) if v.not_found() == 0 && v.valid() != 0 && !v.data.is_null() => {
                core::slice::from_raw_parts(v.data, v.len() as usize)
            }
            _ => &[],
        }
    }
}

/// The value of the variable called `name` (lowercase), if it is set.
///
/// # Safety
/// `r` is live.
unsafe fn named_variable<'a>(r: &mut ngx_http_request_t, name: &str) -> Option<&'a [u8]> {
    let mut key = ngx_str_t {
        len: name.len(),
        data: name.as_ptr().cast_mut(),
    };
    // SAFETY: `r` is live; nginx reads `key` and returns a value in the request pool.
    unsafe {
        let hash = ngx_hash_key(key.data, key.len);
        let v = ngx_http_get_variable(r, &mut key, hash).as_ref()?;
        (v.not_found() == 0 && !v.data.is_null())
            .then(|| core::slice::from_raw_parts(v.data, v.len() as usize))
    }
}

/// Sets indexed variable `index` of `r` to a copy of `value` in the request pool.
///
/// # Safety
/// `r` is live and `index` one of this cycle's variable indices.
unsafe fn set_variable_copy(r: &mut ngx_http_request_t, index: usize, value: &str) -> Option<()> {
    // SAFETY: `r.variables` has an entry for every index of the cycle; the copy lives as
    // long as the request.
    unsafe {
        let data = ngx_pnalloc(r.pool, value.len().max(1)).cast::<u8>();
        if data.is_null() {
            return None;
        }
        ptr::copy_nonoverlapping(value.as_ptr(), data, value.len());
        let v = &mut *r.variables.add(index);
        v.set_len(value.len() as u32);
        v.set_valid(1);
        v.set_no_cacheable(0);
        v.set_not_found(0);
        v.set_escape(0);
        v.data = data;
    }
    Some(())
}

/// `WWW-Authenticate: Bearer realm="dockgate"` on a 401, as the sidecar's answer carries it.
///
/// # Safety
/// `r` is live.
unsafe fn add_www_authenticate(r: &mut ngx_http_request_t) -> Option<()> {
    const NAME: &str = "WWW-Authenticate";
    const LOWER: &str = "www-authenticate";
    const VALUE: &str = "Bearer realm=\"dockgate\"";
    // SAFETY: `headers_out.headers` is the request's live header list; an element is zeroed
    // before use (the `next` field exists from nginx 1.23 on), and the strings are static.
    unsafe {
        let h = ngx_list_push(&mut r.headers_out.headers).cast::<ngx_table_elt_t>();
        let h = h.as_mut()?;
        ptr::write_bytes(h as *mut ngx_table_elt_t, 0, 1);
        h.hash = 1;
        h.key = ngx_str_t {
            len: NAME.len(),
            data: NAME.as_ptr().cast_mut(),
        };
        h.value = ngx_str_t {
            len: VALUE.len(),
            data: VALUE.as_ptr().cast_mut(),
        };
        h.lowcase_key = LOWER.as_ptr().cast_mut();
        r.headers_out.www_authenticate = h;
    }
    Some(())
}

// === impl variables ===

type VarGetter = unsafe extern "C" fn(
    *mut ngx_http_request_t,
    *mut ngx_http_variable_value_t,
    usize,
) -> ngx_int_t;

/// The getter of the decision variables before anything set them: empty.
unsafe extern "C" fn unset_variable(
    _r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    // SAFETY: nginx passes a value slot to fill.
    unsafe { set_variable(&mut *v, None) }
}

unsafe extern "C" fn hijack_variable(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    // SAFETY: nginx passes a live request and a value slot to fill.
    unsafe { set_variable(&mut *v, stream_ctx(r).map(|s| s.kind.as_str())) }
}

unsafe extern "C" fn half_close_variable(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    // SAFETY: as above.
    let value = unsafe { stream_ctx(r) }.and_then(|s| {
        match (
            s.tunnel.is_shut(Dir::ToUpstream),
            s.tunnel.is_shut(Dir::ToClient),
        ) {
            (true, true) => Some("both"),
            (true, false) => Some(Dir::ToUpstream.as_str()),
            (false, true) => Some(Dir::ToClient.as_str()),
            (false, false) => None,
        }
    });
    // SAFETY: as above.
    unsafe { set_variable(&mut *v, value) }
}

/// The stream of request `r`, if it was hijacked.
unsafe fn stream_ctx<'a>(r: *mut ngx_http_request_t) -> Option<&'a Stream> {
    // SAFETY: `r` is live; its module ctx slot is null or our `Stream`.
    unsafe {
        let r = (*r).main;
        (*(*r).ctx.add(ngx_http_dockgate_module.ctx_index))
            .cast::<Stream>()
            .as_ref()
    }
}

fn set_variable(v: &mut ngx_http_variable_value_t, value: Option<&'static str>) -> ngx_int_t {
    match value {
        Some(s) => {
            v.set_len(s.len() as u32);
            v.set_valid(1);
            v.set_no_cacheable(0);
            v.set_not_found(0);
            v.data = s.as_ptr().cast_mut();
        }
        None => v.set_not_found(1),
    }
    NGX_OK as ngx_int_t
}

// === impl status handler ===

unsafe extern "C" fn status_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls content handlers with a live request.
    let r = unsafe { &mut *r };
    if r.method & (NGX_HTTP_GET | NGX_HTTP_HEAD) as ngx_uint_t == 0 {
        return NGX_HTTP_NOT_ALLOWED as ngx_int_t;
    }
    // SAFETY: as above.
    let rc = unsafe { ngx_http_discard_request_body(r) };
    if rc != NGX_OK as ngx_int_t {
        return rc;
    }
    let body = counters().map(Counters::render).unwrap_or_default();

    r.headers_out.status = 200;
    r.headers_out.content_length_n = body.len() as i64;
    const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
    r.headers_out.content_type_len = CONTENT_TYPE.len();
    r.headers_out.content_type = ngx_str_t {
        len: CONTENT_TYPE.len(),
        data: CONTENT_TYPE.as_ptr().cast_mut(),
    };
    // SAFETY: headers are set; nginx owns the rest of the response.
    let rc = unsafe { ngx_http_send_header(r) };
    if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t || r.header_only() != 0 {
        return rc;
    }
    // SAFETY: the buffer comes from the request pool and is sized for the body.
    unsafe {
        let b = ngx_create_temp_buf(r.pool, body.len().max(1));
        let Some(b) = b.as_mut() else {
            return NGX_ERROR as ngx_int_t;
        };
        ptr::copy_nonoverlapping(body.as_ptr(), b.last, body.len());
        b.last = b.last.add(body.len());
        b.set_last_buf(1);
        b.set_last_in_chain(1);
        let mut out = ngx_chain_t {
            buf: b,
            next: ptr::null_mut(),
        };
        ngx_http_output_filter(r, &mut out)
    }
}

// === impl helpers ===

/// A directive handler's error, as nginx expects it: a static C string.
fn conf_error(msg: &'static core::ffi::CStr) -> *mut c_char {
    msg.as_ptr().cast_mut()
}

/// `ngx_str_t` as bytes; empty for a null pointer.
fn str_bytes(s: &ngx_str_t) -> &[u8] {
    if s.data.is_null() || s.len == 0 {
        &[]
    } else {
        // SAFETY: a non-null `ngx_str_t` points at `len` readable bytes.
        unsafe { core::slice::from_raw_parts(s.data, s.len) }
    }
}
