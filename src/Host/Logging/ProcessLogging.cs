using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Spectre.Console;

namespace MoCo.Host.Logging;

/// <summary>How the process writes its log: lines for a person, or one JSON object per line for a log pipeline.</summary>
public enum LogFormat
{
    /// <summary>Today's console: Spectre lines (a live display on a terminal) and Akka's warnings as single lines.</summary>
    Text,

    /// <summary>Every line on stdout is one JSON object (<see cref="JsonLineFormatter"/>) carrying the run's context.</summary>
    Json,
}

/// <summary>
/// The process's one logging path: a Microsoft.Extensions.Logging factory (console provider) that Akka's logs are routed
/// into through Akka.Hosting (<see cref="Hosting.TrainingHost"/>), set once by <c>--log-format</c> before a command runs.
/// With <see cref="LogFormat.Json"/> the commands' console (<see cref="AnsiConsole.Console"/>) is replaced by one that
/// turns each line it would print into a log record, so that nothing on stdout is not JSON.
/// </summary>
public static class ProcessLogging
{
    /// <summary>The option every command takes.</summary>
    public const string OptionName = "--log-format";

    /// <summary>The format in use.</summary>
    public static LogFormat Format { get; private set; } = LogFormat.Text;

    /// <summary>The factory every logger of the process comes from.</summary>
    public static ILoggerFactory Factory { get; private set; } = Create(LogFormat.Text);

    /// <summary>Parses <c>text</c> or <c>json</c>.</summary>
    /// <exception cref="Configuration.ConfigurationError">Anything else; the message names the choices.</exception>
    public static LogFormat Parse(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" or "text" => LogFormat.Text,
        "json" => LogFormat.Json,
        _ => throw new Configuration.ConfigurationError($"--log-format must be text or json, not '{text}'"),
    };

    /// <summary>Sets the process's format (once, before a command runs).</summary>
    public static void Use(LogFormat format)
    {
        Format = format;
        var old = Factory;
        Factory = Create(format);
        old.Dispose();
        if (format == LogFormat.Json)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Ansi = AnsiSupport.No,
                ColorSystem = ColorSystemSupport.NoColors,
                Interactive = InteractionSupport.No,
                Out = new AnsiConsoleOutput(new LogLineWriter(Factory.CreateLogger("MoCo.Console"))),
            });
            console.Profile.Width = 100_000; // one record per line, never wrapped
            AnsiConsole.Console = console;
        }
    }

    /// <summary>A command failed with <paramref name="message"/>: "error: ..." in red, or an error record.</summary>
    public static void Error(string message)
    {
        if (Format == LogFormat.Json)
        {
            Factory.CreateLogger("MoCo").Log(LogLevel.Error, default, "error: " + message, null, static (s, _) => s);
        }
        else
        {
            AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(message)}");
        }
    }

    /// <summary>Flushes the console provider's queue (call before the process exits).</summary>
    public static void Flush() => Factory.Dispose();

    /// <summary>A factory writing to the console in <paramref name="format"/>: information and above.</summary>
    public static ILoggerFactory Create(LogFormat format) => LoggerFactory.Create(logging =>
    {
        logging.SetMinimumLevel(LogLevel.Information);
        if (format == LogFormat.Json)
        {
            logging.AddConsole(o => o.FormatterName = JsonLineFormatter.FormatterName)
                .AddConsoleFormatter<JsonLineFormatter, ConsoleFormatterOptions>();
        }
        else
        {
            logging.AddConsole(o => o.FormatterName = TextLineFormatter.FormatterName)
                .AddConsoleFormatter<TextLineFormatter, ConsoleFormatterOptions>();
        }
    });
}

/// <summary>Turns each line written to it into one information record of <paramref name="logger"/> (the line is the message).</summary>
internal sealed class LogLineWriter(ILogger logger) : TextWriter
{
    private readonly System.Text.StringBuilder _line = new();

    public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

    public override void Write(char value)
    {
        lock (_line)
        {
            if (value == '\n')
            {
                var text = _line.ToString().TrimEnd('\r');
                _line.Clear();
                if (text.Length > 0)
                {
                    logger.Log(LogLevel.Information, default, text, null, static (s, _) => s);
                }
                return;
            }
            _line.Append(value);
        }
    }

    public override void Write(string? value)
    {
        foreach (var c in value ?? "")
        {
            Write(c);
        }
    }
}
