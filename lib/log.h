/* log.h — logging to stderr (foreground) or syslog/journal (daemon).
 * Every line names its subsystem; request handlers add the request id. */
#ifndef BASTION_LOG_H
#define BASTION_LOG_H

#include <stdarg.h>
#include <stddef.h>

#define LOG_FMT(a, b) __attribute__((format(printf, a, b)))

/* Each .c file may define LOG_SUBSYS before including this header. */
#ifndef LOG_SUBSYS
#define LOG_SUBSYS "main"
#endif

/* Copy in to out (NUL-terminated, cut at a whole character) with every
 * C0 control, DEL, C1 control and byte of invalid UTF-8 written as a
 * visible escape: \n, \r, \t or \xNN. Returns the length written.
 * log_vemit passes every line through it. */
size_t	log_escape(char *out, size_t len, const char *in);
void	log_init(int foreground, int debug, const char *ident);
void	log_set_debug(int debug);
int	log_is_debug(void);
void	log_emit(int prio, const char *subsys, int with_errno,
	    const char *fmt, ...) LOG_FMT(4, 5);
void	log_vemit(int prio, const char *subsys, int with_errno,
	    const char *fmt, va_list ap) LOG_FMT(4, 0);
__attribute__((noreturn)) void log_fatal(const char *subsys, int with_errno,
	    const char *fmt, ...) LOG_FMT(3, 4);

#include <syslog.h>
#define log_warn(...)	log_emit(LOG_WARNING, LOG_SUBSYS, 1, __VA_ARGS__)
#define log_warnx(...)	log_emit(LOG_WARNING, LOG_SUBSYS, 0, __VA_ARGS__)
#define log_info(...)	log_emit(LOG_INFO, LOG_SUBSYS, 0, __VA_ARGS__)
#define log_debug(...)	log_emit(LOG_DEBUG, LOG_SUBSYS, 0, __VA_ARGS__)
#define fatal(...)	log_fatal(LOG_SUBSYS, 1, __VA_ARGS__)
#define fatalx(...)	log_fatal(LOG_SUBSYS, 0, __VA_ARGS__)

#endif
