using Microsoft.Win32.SafeHandles;

namespace MoCo.Model.Data.Shards;

/// <summary>
/// One worker's reader of one epoch of shards, from a step on: a background thread reads the encoded images this
/// worker will consume, group by group in the epoch's order, and within a group in the order they lie on disk (each
/// shard front to back: sequential reads, with gaps where other workers' samples lie); the loader threads take them
/// (<see cref="Image"/>) and decode them. Memory is bounded: the thread starts a group only while the bytes read and not
/// yet taken are at most <see cref="ShardOptions.ReadAheadBytes"/>, or when a consumer is waiting for a sample it has
/// not read, so it holds at most the read-ahead plus one group's share of encoded images
/// (<see cref="PeakHeldBytes"/> records the most it held).
/// </summary>
public sealed class ShardReadAhead : IImageDataset, IDisposable
{
    private readonly ShardDataset _data;
    private readonly List<int[]> _plan;
    private readonly long _budget;
    private readonly Dictionary<int, byte[]> _held = [];
    private readonly object _gate = new();
    private readonly Thread _reader;
    private long _heldBytes;
    private readonly HashSet<int> _wanted = [];
    private bool _done;
    private bool _disposed;
    private Exception? _failure;

    /// <summary>
    /// Starts reading the samples that the global positions <paramref name="positions"/> of each step from
    /// <paramref name="fromStep"/> to the end of the epoch hold.
    /// </summary>
    public ShardReadAhead(ShardDataset data, ShardEpoch epoch, IReadOnlyList<int> positions, int fromStep)
    {
        _data = data;
        _budget = data.Options.ReadAheadBytes;
        _plan = Plan(data, epoch, positions, fromStep);
        _reader = new Thread(Read) { IsBackground = true, Name = "moco-shard-read-ahead" };
        _reader.Start();
    }

    /// <summary>The most encoded bytes held at once so far.</summary>
    public long PeakHeldBytes { get; private set; }

    /// <inheritdoc />
    public int Count => _data.Count;

    /// <inheritdoc />
    public IReadOnlyList<string> Classes => _data.Classes;

    /// <inheritdoc />
    public int Label(int index) => _data.Label(index);

    /// <summary>Takes sample <paramref name="index"/>'s bytes (waiting for the reader) and decodes them. Each planned sample can be taken once.</summary>
    /// <exception cref="InvalidOperationException">The sample is not one this reader was asked for, or was taken already.</exception>
    /// <exception cref="InvalidDataException">Reading failed, or the image cannot be decoded (the message names the shard).</exception>
    public ImageU8 Image(int index)
    {
        byte[] bytes;
        lock (_gate)
        {
            _wanted.Add(index);
            try
            {
                while (!_held.Remove(index, out bytes!))
                {
                    if (_failure is not null)
                    {
                        throw _failure is InvalidDataException
                            ? new InvalidDataException(_failure.Message, _failure)
                            : new InvalidDataException($"Reading the shards failed: {_failure.Message}", _failure);
                    }
                    if (_done || _disposed)
                    {
                        throw new InvalidOperationException($"Sample {index} is not one this worker reads from this step on, or it was taken already.");
                    }
                    Monitor.PulseAll(_gate); // a waiting consumer lets the reader past the budget
                    Monitor.Wait(_gate);
                }
            }
            finally
            {
                _wanted.Remove(index);
            }
            _heldBytes -= _data.Record(index).Length;
            Monitor.PulseAll(_gate);
        }
        return _data.Decode(index, bytes);
    }

    /// <summary>For each group from the one holding <paramref name="fromStep"/>'s first position, this worker's samples in disk order.</summary>
    private static List<int[]> Plan(ShardDataset data, ShardEpoch epoch, IReadOnlyList<int> positions, int fromStep)
    {
        var order = epoch.Order;
        var byGroup = new Dictionary<int, List<int>>();
        int firstGroup = int.MaxValue;
        for (int step = fromStep; step < order.StepsPerEpoch; step++)
        {
            foreach (int p in positions)
            {
                int position = step * order.GlobalBatch + p;
                int group = epoch.GroupAt(position);
                firstGroup = Math.Min(firstGroup, group);
                if (!byGroup.TryGetValue(group, out var samples))
                {
                    byGroup[group] = samples = [];
                }
                samples.Add(order.SampleAt(step, p));
            }
        }
        var plan = new List<int[]>();
        foreach (int group in byGroup.Keys.Order())
        {
            var samples = byGroup[group].ToArray();
            Array.Sort(samples, (a, b) =>
            {
                var ra = data.Record(a);
                var rb = data.Record(b);
                return ra.Shard != rb.Shard ? ra.Shard.CompareTo(rb.Shard) : ra.Offset.CompareTo(rb.Offset);
            });
            plan.Add(samples);
        }
        return plan;
    }

    private void Read()
    {
        try
        {
            foreach (var group in _plan)
            {
                lock (_gate)
                {
                    while (!_disposed && _heldBytes > _budget && !ConsumerWaitsForUnread())
                    {
                        Monitor.Wait(_gate);
                    }
                    if (_disposed)
                    {
                        return;
                    }
                }
                ReadGroup(group);
            }
        }
        catch (Exception e)
        {
            lock (_gate)
            {
                _failure = e;
            }
        }
        finally
        {
            lock (_gate)
            {
                _done = true;
                Monitor.PulseAll(_gate);
            }
        }
    }

    /// <summary>True when a consumer waits for a sample not read yet (it lies ahead): the reader must go on, whatever it holds.</summary>
    private bool ConsumerWaitsForUnread()
    {
        foreach (int index in _wanted)
        {
            if (!_held.ContainsKey(index))
            {
                return true;
            }
        }
        return false;
    }

    private void ReadGroup(int[] samples)
    {
        SafeFileHandle? handle = null;
        int open = -1;
        try
        {
            foreach (int index in samples)
            {
                var record = _data.Record(index);
                if (record.Shard != open)
                {
                    handle?.Dispose();
                    handle = _data.OpenShard(record.Shard);
                    open = record.Shard;
                }
                // an array of the record's exact size (not a pooled one rounded up), so that what is counted is what is held
                var bytes = GC.AllocateUninitializedArray<byte>(record.Length);
                _data.ReadAt(handle!, record, bytes);
                lock (_gate)
                {
                    if (_disposed)
                    {
                        return;
                    }
                    _held[index] = bytes;
                    _heldBytes += record.Length;
                    PeakHeldBytes = Math.Max(PeakHeldBytes, _heldBytes);
                    Monitor.PulseAll(_gate);
                }
            }
        }
        finally
        {
            handle?.Dispose();
        }
    }

    /// <summary>Stops the reader and returns the bytes it still holds.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            Monitor.PulseAll(_gate);
        }
        _reader.Join();
        lock (_gate)
        {
            _held.Clear();
            _heldBytes = 0;
        }
    }
}
