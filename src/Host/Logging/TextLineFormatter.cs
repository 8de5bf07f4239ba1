using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace MoCo.Host.Logging;

/// <summary>
/// The human log line of <c>--log-format text</c>: <c>2026-12-03T07:28:40.743Z warn: Category message</c>, one line
/// per record (an exception follows on its own lines). Akka's records, which arrive with Akka's own prefix
/// (<c>[WARNING][time][Thread n][source] text</c>), print as <c>time warn: [source] text</c>: one time stamp and one
/// level, not two.
/// </summary>
public sealed class TextLineFormatter : ConsoleFormatter
{
    /// <summary>The formatter's name for the console provider.</summary>
    public const string FormatterName = "moco-text";

    /// <summary>Creates the formatter (the console provider does).</summary>
    public TextLineFormatter() : base(FormatterName)
    {
    }

    /// <inheritdoc />
    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter?.Invoke(logEntry.State, logEntry.Exception) ?? logEntry.State?.ToString() ?? "";
        textWriter.Write(Format(DateTimeOffset.UtcNow, logEntry.LogLevel, logEntry.Category, message, logEntry.Exception));
        textWriter.Write('\n');
    }

    /// <summary>The line of one record (no final newline).</summary>
    public static string Format(DateTimeOffset time, LogLevel level, string category, string message, Exception? exception)
    {
        string where = category;
        var akka = JsonLineFormatter.AkkaLine.Match(message);
        if (akka.Success)
        {
            where = "[" + akka.Groups[2].Value + "]";
            message = akka.Groups[3].Value;
        }

        var line = time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture) + " " + Short(level) + ": " + where + " " + message;
        return exception is null ? line : line + Environment.NewLine + exception;
    }

    private static string Short(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => "none",
    };
}
