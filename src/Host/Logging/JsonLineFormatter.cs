using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace MoCo.Host.Logging;

/// <summary>
/// One flat JSON object per record, for a log pipeline (Loki, Elasticsearch, Cloud Logging): <c>time</c> (UTC, ISO
/// 8601), <c>level</c>, <c>category</c>, <c>message</c>; the run's place from <see cref="RunLogContext"/>
/// (<c>run_id</c>, <c>generation</c>, <c>world_size</c>, <c>epoch</c>, <c>step</c>); <c>rank</c> when the record is
/// about one (a structured <c>Rank</c>, or a worker actor of the director, <c>.../training-director/worker-N</c>);
/// for Akka's records, <c>source</c> (the actor path) and <c>thread</c> out of Akka's own prefix; the
/// record's own structured values in snake case (they win over the context's); <c>exception</c> when there is one.
/// </summary>
public sealed partial class JsonLineFormatter : ConsoleFormatter
{
    /// <summary>The formatter's name for the console provider.</summary>
    public const string FormatterName = "moco-json";

    /// <summary>Creates the formatter (the console provider does).</summary>
    public JsonLineFormatter() : base(FormatterName)
    {
    }

    /// <inheritdoc />
    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter?.Invoke(logEntry.State, logEntry.Exception) ?? logEntry.State?.ToString() ?? "";
        textWriter.Write(Format(DateTimeOffset.UtcNow, logEntry.LogLevel, logEntry.Category, message, logEntry.State as IReadOnlyList<KeyValuePair<string, object?>>,
            logEntry.Exception, RunLogContext.Current));
        textWriter.Write('\n');
    }

    /// <summary>The JSON object of one record (no newline).</summary>
    public static string Format(DateTimeOffset time, LogLevel level, string category, string message, IReadOnlyList<KeyValuePair<string, object?>>? state,
        Exception? exception, RunLogContext.Snapshot? run)
    {
        var fields = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (run is not null)
        {
            fields["run_id"] = run.RunId;
            void Known(string key, object? value)
            {
                if (value is not null)
                {
                    fields[key] = value;
                }
            }
            Known("generation", run.Generation);
            Known("world_size", run.WorldSize);
            Known("epoch", run.Epoch);
            Known("step", run.GlobalStep);
        }
        // Akka's records arrive formatted as "[LEVEL][time][Thread n][source] text": the source becomes a field
        var akka = AkkaLine.Match(message);
        if (akka.Success)
        {
            fields["source"] = akka.Groups[2].Value;
            fields["thread"] = int.Parse(akka.Groups[1].Value, CultureInfo.InvariantCulture);
            message = akka.Groups[3].Value;
        }
        var worker = WorkerOfDirector().Match(category + " " + message + " " + (akka.Success ? akka.Groups[2].Value : ""));
        if (worker.Success)
        {
            fields["rank"] = int.Parse(worker.Groups[1].Value, CultureInfo.InvariantCulture);
        }
        if (state is not null)
        {
            foreach (var (key, value) in state)
            {
                if (key != "{OriginalFormat}")
                {
                    fields[SnakeCase(key)] = value;
                }
            }
        }

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteString("time", time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
            json.WriteString("level", level.ToString().ToLowerInvariant());
            json.WriteString("category", category);
            json.WriteString("message", message);
            foreach (var (key, value) in fields)
            {
                if (key is "time" or "level" or "category" or "message" or "exception")
                {
                    continue; // the record's own fields are not overwritten by a structured value of the same name
                }
                WriteValue(json, key, value);
            }
            if (exception is not null)
            {
                json.WriteString("exception", exception.ToString());
            }
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteValue(Utf8JsonWriter json, string key, object? value)
    {
        switch (value)
        {
            case null:
                json.WriteNull(key);
                break;
            case bool b:
                json.WriteBoolean(key, b);
                break;
            case int or long or short or byte or uint or ulong:
                json.WriteNumber(key, Convert.ToInt64(value, CultureInfo.InvariantCulture));
                break;
            case double d when double.IsFinite(d):
                json.WriteNumber(key, d);
                break;
            case float f when float.IsFinite(f):
                json.WriteNumber(key, f);
                break;
            case double or float:
                json.WriteString(key, Convert.ToString(value, CultureInfo.InvariantCulture)); // NaN, Infinity: not JSON numbers
                break;
            default:
                json.WriteString(key, Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
        }
    }

    /// <summary><c>GlobalStep</c> → <c>global_step</c>; <c>run_id</c> stays.</summary>
    public static string SnakeCase(string name)
    {
        var text = new System.Text.StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (char.IsUpper(c))
            {
                if (i > 0 && name[i - 1] != '_' && !char.IsUpper(name[i - 1]))
                {
                    text.Append('_');
                }
                text.Append(char.ToLowerInvariant(c));
            }
            else
            {
                text.Append(c);
            }
        }
        return text.ToString();
    }

    [GeneratedRegex(@"training-director/worker-(\d+)")]
    private static partial Regex WorkerOfDirector();

    /// <summary>
    /// Akka's own prefix on its records, "[LEVEL][time][Thread n][source] text": groups 1 (thread), 2 (source), 3 (text).
    /// Both formatters take it apart, so that a record has one time stamp and one level.
    /// </summary>
    internal static Regex AkkaLine => AkkaPrefix();

    [GeneratedRegex(@"^\[[A-Z]+\]\[[^\]]*\]\[Thread (\d+)\]\[([^\]]*)\] (.*)$", RegexOptions.Singleline)]
    private static partial Regex AkkaPrefix();
}
