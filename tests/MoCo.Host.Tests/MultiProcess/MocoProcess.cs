using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace MoCo.Host.Tests.MultiProcess;

/// <summary>
/// One <c>moco</c> process of a multi-process test: started with its own environment, its output collected line by line,
/// killed (the whole tree) when disposed, also when the test fails. Signals go through <c>kill</c>.
/// </summary>
public sealed class MocoProcess : IDisposable
{
    private static readonly string Moco = Path.Combine(AppContext.BaseDirectory, "moco.dll");
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly object _gate = new();

    private MocoProcess(Process process, string name)
    {
        _process = process;
        Name = name;
    }

    /// <summary>A name for messages.</summary>
    public string Name { get; }

    /// <summary>Whether the process has ended.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>The process id.</summary>
    public int Id => _process.Id;

    /// <summary>Everything printed so far.</summary>
    public string Output
    {
        get
        {
            lock (_gate)
            {
                return string.Join('\n', _lines);
            }
        }
    }

    /// <summary>Starts <c>moco</c> with <paramref name="args"/>.</summary>
    public static MocoProcess Start(string name, IEnumerable<string> args, params (string Name, string Value)[] environment)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        start.ArgumentList.Add(Moco);
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["COLUMNS"] = "200";
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start };
        var moco = new MocoProcess(process, name);
        process.OutputDataReceived += (_, e) => moco.Add(e.Data);
        process.ErrorDataReceived += (_, e) => moco.Add(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return moco;
    }

    /// <summary>A TCP port free at the moment of asking.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Waits for a line matching <paramref name="pattern"/>; returns the match.</summary>
    public async Task<Match> WaitForAsync(string pattern, TimeSpan timeout)
    {
        var regex = new Regex(pattern);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            lock (_gate)
            {
                foreach (var line in _lines)
                {
                    var match = regex.Match(line);
                    if (match.Success)
                    {
                        return match;
                    }
                }
            }

            if (_process.HasExited)
            {
                await Task.Delay(200); // the last lines
                lock (_gate)
                {
                    var match = _lines.Select(l => regex.Match(l)).FirstOrDefault(m => m.Success);
                    if (match is not null)
                    {
                        return match;
                    }
                }

                throw new InvalidOperationException($"{Name} exited ({_process.ExitCode}) without printing /{pattern}/:\n{Output}");
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"{Name} did not print /{pattern}/ within {timeout.TotalSeconds:F0} s:\n{Output}");
    }

    /// <summary>Waits for the process to end; returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Name} did not exit within {timeout.TotalSeconds:F0} s:\n{Output}");
        }

        _process.WaitForExit(); // flushes the output handlers
        return _process.ExitCode;
    }

    /// <summary>Sends a signal (KILL, STOP, CONT, TERM).</summary>
    public void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                Signal("CONT");
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }

    private void Add(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            _lines.Add(line);
        }
    }
}
