using System.Runtime.InteropServices;

namespace MoCo.Host.Hosting;

/// <summary>
/// SIGTERM (the kubelet, systemd, <c>kill</c>) and SIGINT (Ctrl-C) for a command that stops on its own terms: the
/// signals do not end the process, they cancel <see cref="Token"/> and run <see cref="OnStop"/> (off the signal's
/// thread) with a reason, e.g. "SIGTERM". One registration for the whole command, whatever it is doing.
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly PosixSignalRegistration _term;
    private readonly PosixSignalRegistration _interrupt;
    private Action<string>? _onStop;

    public StopSignals()
    {
        _term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => Stop(context, "SIGTERM"));
        _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => Stop(context, "interrupted (Ctrl-C)"));
    }

    /// <summary>Cancelled by the first signal.</summary>
    public CancellationToken Token => _stop.Token;

    /// <summary>What a signal does besides cancelling <see cref="Token"/> (may be replaced at any time; null: nothing).</summary>
    public Action<string>? OnStop
    {
        get => Volatile.Read(ref _onStop);
        set => Volatile.Write(ref _onStop, value);
    }

    /// <summary>Blocks until a signal has arrived (at once when one already has).</summary>
    public void Wait() => _stop.Token.WaitHandle.WaitOne();

    /// <inheritdoc />
    public void Dispose()
    {
        _term.Dispose();
        _interrupt.Dispose();
        _stop.Dispose();
    }

    private void Stop(PosixSignalContext context, string reason)
    {
        context.Cancel = true;
        _stop.Cancel();
        var onStop = OnStop;
        if (onStop is not null)
        {
            Task.Run(() => onStop(reason));
        }
    }
}
