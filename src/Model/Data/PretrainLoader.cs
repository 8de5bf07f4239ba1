using System.Collections.Concurrent;
using MoCo.Model.Training;
using static TorchSharp.torch;

namespace MoCo.Model.Data;

/// <summary>Two augmented views of this worker's share of one global step. The receiver disposes it.</summary>
public sealed class LocalBatch : IDisposable
{
    public LocalBatch(int epoch, int step, Tensor view1, Tensor view2)
    {
        Epoch = epoch;
        Step = step;
        View1 = view1;
        View2 = view2;
    }

    public int Epoch { get; }

    public int Step { get; }

    public Tensor View1 { get; }

    public Tensor View2 { get; }

    public void Dispose()
    {
        View1.Dispose();
        View2.Dispose();
    }
}

/// <summary>
/// Prepares the pretraining batches of one worker on background threads, a few steps ahead, so that the
/// step does not wait for data. Batch (epoch, step) holds, for each of the worker's global positions p,
/// the image <see cref="EpochOrder.SampleAt"/>(step, p) augmented twice with the streams
/// (seed, Augmentation, epoch, image index, view 0/1): the same whatever the world size or thread count.
/// </summary>
public sealed class PretrainLoader : IDisposable
{
    private readonly IImageDataset _dataset;
    private readonly IViewTransform _transform;
    private readonly BatchLayout _layout;
    private readonly int _rank;
    private readonly ulong _seed;
    private readonly int _threads;
    private readonly int _prefetch;
    private BlockingCollection<LocalBatch>? _queue;
    private CancellationTokenSource? _cts;
    private Task? _producer;
    private Shards.ShardReadAhead? _stream;

    public PretrainLoader(IImageDataset dataset, IViewTransform transform, BatchLayout layout, int rank, ulong seed, int threads, int prefetch = 3)
    {
        _dataset = dataset;
        _transform = transform;
        _layout = layout;
        _rank = rank;
        _seed = seed;
        _threads = Math.Max(1, threads);
        _prefetch = Math.Max(1, prefetch);
    }

    /// <summary>Seconds the consumer spent blocked in <see cref="Next"/> since the last <see cref="Start"/>.</summary>
    public double WaitSeconds { get; private set; }

    /// <summary>Starts producing the batches of <paramref name="epoch"/> from <paramref name="fromStep"/> to the end of the epoch.</summary>
    public void Start(int epoch, int fromStep)
    {
        Stop();
        EpochOrder order;
        IImageDataset source = _dataset;
        if (_dataset is Shards.ShardDataset shards)
        {
            // shards are read in the epoch's order by a reader of their own, not at random
            var shardEpoch = shards.Epoch(_seed, epoch, _layout.GlobalBatch);
            order = shardEpoch.Order;
            _stream = new Shards.ShardReadAhead(shards, shardEpoch, _layout.Positions(_rank), fromStep);
            source = _stream;
        }
        else
        {
            order = new EpochOrder(_seed, epoch, _dataset.Count, _layout.GlobalBatch);
        }
        _queue = new BlockingCollection<LocalBatch>(_prefetch);
        _cts = new CancellationTokenSource();
        var queue = _queue;
        var token = _cts.Token;
        WaitSeconds = 0;
        _producer = Task.Factory.StartNew(() =>
        {
            try
            {
                for (int step = fromStep; step < order.StepsPerEpoch && !token.IsCancellationRequested; step++)
                {
                    queue.Add(Build(source, order, step), token);
                }
            }
            catch (OperationCanceledException)
            {
            }
            finally
            {
                queue.CompleteAdding();
            }
        }, token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>The next batch in step order; blocks until it is ready.</summary>
    public LocalBatch Next()
    {
        var queue = _queue ?? throw new InvalidOperationException("call Start(epoch, step) first");
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        if (!queue.TryTake(out var batch, Timeout.Infinite))
        {
            _producer?.Wait(); // surfaces the producer's exception, if any
            throw new InvalidOperationException("the epoch has no more batches");
        }
        WaitSeconds += System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds;
        return batch;
    }

    /// <summary>Builds batch (order.Epoch, step) synchronously on the calling thread and its helpers, reading images at random.</summary>
    public LocalBatch Build(EpochOrder order, int step) => Build(_dataset, order, step);

    private LocalBatch Build(IImageDataset source, EpochOrder order, int step)
    {
        var positions = _layout.Positions(_rank);
        int epoch = order.Epoch;
        Func<int, int> indexOf = i => order.SampleAt(step, positions[i]);
        var (view1, view2) = ViewBatch.BuildPair(source, _transform, positions.Count, indexOf,
            (_, index, view) => new CounterRng(_seed, RngStream.Augmentation, (ulong)epoch, (ulong)index, (ulong)view), _threads);
        return new LocalBatch(order.Epoch, step, view1, view2);
    }

    private void Stop()
    {
        if (_cts is null)
        {
            return;
        }
        _cts.Cancel();
        if (_queue is not null)
        {
            while (_queue.TryTake(out var pending))
            {
                pending.Dispose();
            }
        }
        try
        {
            _producer?.Wait();
        }
        catch (AggregateException)
        {
        }
        if (_queue is not null)
        {
            while (_queue.TryTake(out var pending))
            {
                pending.Dispose();
            }
            _queue.Dispose();
        }
        _stream?.Dispose();
        _stream = null;
        _cts.Dispose();
        _cts = null;
        _queue = null;
        _producer = null;
    }

    public void Dispose() => Stop();
}
