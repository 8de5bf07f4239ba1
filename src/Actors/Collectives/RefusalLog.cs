namespace MoCo.Actors.Collectives;

/// <summary>
/// What a listener refused while it waited for its predecessor, for the message when the ring does not form: the last
/// <see cref="MaxKept"/> refusals word for word with a count of the older ones, and a count of the connections dropped
/// unread because <see cref="TcpRingListener.MaxPendingHandshakes"/> handshakes were already pending. Its size is
/// bounded whatever strangers send. Thread-safe.
/// </summary>
internal sealed class RefusalLog
{
    /// <summary>How many refusals are kept word for word (the newest ones).</summary>
    public const int MaxKept = 16;

    private readonly Queue<string> _kept = new();
    private readonly object _gate = new();
    private long _forgotten;
    private long _dropped;

    /// <summary>True when nothing was refused or dropped.</summary>
    public bool IsEmpty
    {
        get
        {
            lock (_gate)
            {
                return _kept.Count == 0 && _dropped == 0;
            }
        }
    }

    /// <summary>The newest refusals, oldest first (at most <see cref="MaxKept"/>).</summary>
    public IReadOnlyList<string> Kept
    {
        get
        {
            lock (_gate)
            {
                return _kept.ToArray();
            }
        }
    }

    /// <summary>Refusals older than the ones kept, counted but no longer described.</summary>
    public long Forgotten
    {
        get
        {
            lock (_gate)
            {
                return _forgotten;
            }
        }
    }

    /// <summary>Connections closed unread because too many handshakes were pending.</summary>
    public long Dropped
    {
        get
        {
            lock (_gate)
            {
                return _dropped;
            }
        }
    }

    /// <summary>Records one refused connection (its address and why); the oldest description goes when more than <see cref="MaxKept"/> are held.</summary>
    public void Add(string refusal)
    {
        lock (_gate)
        {
            _kept.Enqueue(refusal);
            if (_kept.Count > MaxKept)
            {
                _kept.Dequeue();
                _forgotten++;
            }
        }
    }

    /// <summary>Counts one connection closed unread because too many handshakes were pending.</summary>
    public void CountDropped()
    {
        lock (_gate)
        {
            _dropped++;
        }
    }

    /// <summary>The refusals kept, joined by "; ", then how many older ones and dropped connections there were.</summary>
    public override string ToString()
    {
        lock (_gate)
        {
            var parts = new List<string>();
            if (_forgotten > 0)
            {
                parts.Add($"{_forgotten} earlier refusal(s) not shown");
            }
            parts.AddRange(_kept);
            if (_dropped > 0)
            {
                parts.Add($"{_dropped} connection(s) closed unread because {TcpRingListener.MaxPendingHandshakes} handshakes were already pending");
            }
            return string.Join("; ", parts);
        }
    }
}
