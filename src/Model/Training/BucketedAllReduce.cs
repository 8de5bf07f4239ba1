using System.Runtime.ExceptionServices;
using MoCo.Model.Collectives;
using MoCo.Model.Nn;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCo.Model.Training;

/// <summary>
/// The gradient all-reduce of one step, in the buckets of a <see cref="GradientBucketPlan"/>. Installed as the
/// query encoder's <see cref="ISegmentTap"/>, it puts a <see cref="GradientTapFunction"/> at the input of each
/// bucket's lowest segment; when backward passes the last of that tap's nodes (one per forward through the
/// encoder), the bucket's gradients are final and a communication thread all-reduces them while backward goes on.
/// <para>
/// Why final: the CPU autograd engine runs every ready node on the thread that called backward, taking the node
/// with the highest sequence number first (nodes are numbered as forward creates them; a parameter's
/// AccumulateGrad node ranks above all). A node's inputs in backward come from nodes created after it, so when
/// the tap's node (number t) runs, every node numbered above t that backward will run has run; the operations that
/// use a parameter of a later segment are such nodes, and the AccumulateGrad that follows them ranks above the tap.
/// The tests check this on the encoder (BucketedAllReduceTests); <see cref="Complete"/> checks every step that
/// no gradient that was absent at launch appeared later.
/// </para>
/// Collectives keep their rules: the buckets go out in plan order, one at a time, from the communication thread
/// only, while the step's thread makes no collective call (forward's gathers are done, the final all-reduce waits
/// for <see cref="Complete"/>), so every rank issues the same operations in the same order. A failed bucket stops
/// the rest; <see cref="Complete"/> rethrows its exception on the step's thread, and the step commits nothing.
/// </summary>
internal sealed class BucketedAllReduce : ISegmentTap, IDisposable
{
    private readonly ICollective _collective;
    private readonly GradientBucketPlan _plan;
    private readonly IReadOnlyList<Parameter> _parameters;
    private readonly int[] _bucketOfSegment;
    private readonly int[] _passes;
    private readonly int[] _fired;
    private readonly Tensor[]?[] _ready;
    private readonly List<int>[] _absent;
    private readonly object _gate = new();
    private readonly Thread? _thread;
    private bool _abandoned;
    private Exception? _failure;
    private Exception? _tapFailure;

    /// <param name="collective">This rank's collective.</param>
    /// <param name="plan">The buckets (the same on every rank).</param>
    /// <param name="parameters">The optimizer's parameters, which the plan's indices name.</param>
    /// <param name="overlap">Reduce each bucket on a communication thread as soon as backward finishes it; otherwise all after backward, on the caller's thread.</param>
    public BucketedAllReduce(ICollective collective, GradientBucketPlan plan, IReadOnlyList<Parameter> parameters, bool overlap)
    {
        _collective = collective;
        _plan = plan;
        _parameters = parameters;
        _bucketOfSegment = Enumerable.Repeat(-1, plan.SegmentCount).ToArray();
        for (int b = 0; b < plan.Buckets.Count; b++)
        {
            _bucketOfSegment[plan.FirstSegments[b]] = b;
        }
        _passes = new int[plan.SegmentCount];
        _fired = new int[plan.SegmentCount];
        _ready = new Tensor[]?[plan.Buckets.Count];
        _absent = plan.Buckets.Select(_ => new List<int>()).ToArray();
        if (overlap && plan.Buckets.Count > 0)
        {
            _thread = new Thread(ReduceInOrder) { IsBackground = true, Name = $"gradient-buckets-{collective.Rank}" };
            _thread.Start();
        }
    }

    /// <summary>Buckets whose tap fired during backward (the rest were launched by <see cref="Complete"/>).</summary>
    public int LaunchedDuringBackward { get; private set; }

    /// <inheritdoc />
    public Tensor Tap(int segment, Tensor input)
    {
        if (_thread is null || segment >= _bucketOfSegment.Length || _bucketOfSegment[segment] < 0)
        {
            return input;
        }
        _passes[segment]++;
        return GradientTapFunction.Apply(input, () => OnBackward(segment));
    }

    /// <summary>
    /// After backward: launches the buckets no tap completed, waits for every bucket's all-reduce (rethrowing the
    /// first failure), checks that no gradient appeared after its bucket left, and returns the gradients that remain
    /// to be reduced with the BN statistics (the plan's <see cref="GradientBucketPlan.Final"/> that have one).
    /// </summary>
    public List<Tensor> Complete()
    {
        if (_tapFailure is not null)
        {
            throw new InvalidOperationException("a gradient tap failed during backward", _tapFailure);
        }
        for (int b = 0; b < _ready.Length; b++)
        {
            MarkReady(b);
        }
        if (_thread is not null)
        {
            _thread.Join();
            if (_failure is not null)
            {
                ExceptionDispatchInfo.Throw(_failure);
            }
        }
        else
        {
            using var _ = no_grad();
            foreach (var grads in _ready)
            {
                Reduce(grads!);
            }
        }
        for (int b = 0; b < _absent.Length; b++)
        {
            foreach (var i in _absent[b])
            {
                if (_parameters[i].grad is not null)
                {
                    throw new InvalidOperationException($"the gradient of optimized parameter {i} appeared after its bucket {b} had been all-reduced: the tap at segment {_plan.FirstSegments[b]} fired too early");
                }
            }
        }
        return _plan.Final.Select(i => _parameters[i].grad).Where(g => g is not null).Select(g => g!).ToList();
    }

    /// <summary>Stops the communication thread after the bucket in flight, if any (a step that failed).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _abandoned = true;
            Monitor.PulseAll(_gate);
        }
        _thread?.Join();
    }

    /// <summary>Runs inside the autograd engine: must not throw.</summary>
    private void OnBackward(int segment)
    {
        try
        {
            if (++_fired[segment] == _passes[segment])
            {
                LaunchedDuringBackward++;
                MarkReady(_bucketOfSegment[segment]);
            }
        }
        catch (Exception e)
        {
            _tapFailure ??= e;
        }
    }

    /// <summary>Takes bucket <paramref name="b"/>'s gradients (now final) and hands them to the communication thread.</summary>
    private void MarkReady(int b)
    {
        if (_ready[b] is not null)
        {
            return;
        }
        var grads = new List<Tensor>();
        foreach (var i in _plan.Buckets[b])
        {
            if (_parameters[i].grad is { } g)
            {
                grads.Add(g);
            }
            else
            {
                _absent[b].Add(i);
            }
        }
        lock (_gate)
        {
            _ready[b] = grads.ToArray();
            Monitor.PulseAll(_gate);
        }
    }

    private void ReduceInOrder()
    {
        try
        {
            using var _ = no_grad();
            for (int b = 0; b < _ready.Length; b++)
            {
                Tensor[] grads;
                lock (_gate)
                {
                    while (_ready[b] is null && !_abandoned)
                    {
                        Monitor.Wait(_gate);
                    }
                    if (_abandoned)
                    {
                        return;
                    }
                    grads = _ready[b]!;
                }
                Reduce(grads);
            }
        }
        catch (Exception e)
        {
            _failure = e;
        }
    }

    /// <summary>Sums one bucket's gradients over the ranks, in place, through one flat collective.</summary>
    private void Reduce(Tensor[] grads) => FlatAllReduce.SumInPlace(_collective, grads);
}
