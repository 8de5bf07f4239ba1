using MoCo.Model.Collectives;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model;

/// <summary>
/// MoCo (He et al. 2020; Chen et al. 2020): a query encoder, a key encoder that follows it by momentum, and a
/// queue of negative keys. Reads like facebookresearch/moco's builder.py; the step that drives it (optimizer,
/// collectives, atomic commit) is <see cref="MocoTrainStep"/>. Names: encoder_q, encoder_k, queue, queue_ptr.
/// </summary>
public sealed class MomentumContrast : nn.Module
{
    private readonly ResNet encoder_q;
    private readonly ResNet encoder_k;
    private readonly Tensor queue;      // dim x K, columns L2-normalised
    private readonly Tensor queue_ptr;  // int64 scalar

    public MomentumContrast(Func<ResNet> encoderFactory, MocoSettings settings, ulong seed)
        : base(nameof(MomentumContrast))
    {
        Settings = settings;
        using (var g = new Generator(new CounterRng(seed, RngStream.ModelInit, 0, 0).NextUInt64()))
        {
            // every draw from this generator, never torch's global one: the same seed gives the same model on
            // any thread, whatever else the process does
            encoder_q = encoderFactory();
            encoder_q.ResetParameters(g);
            encoder_k = encoderFactory();
            using var init = randn(settings.Dim, settings.QueueSize, generator: g);
            queue = nn.functional.normalize(init, dim: 0);
        }
        queue_ptr = zeros(1, dtype: ScalarType.Int64).squeeze();
        using (no_grad())
        {
            foreach (var (pq, pk) in encoder_q.parameters().Zip(encoder_k.parameters()))
            {
                pk.copy_(pq);       // initialise the key encoder as a copy
                pk.requires_grad = false; // not updated by gradient
            }
        }
        RegisterComponents();
    }

    public MocoSettings Settings { get; }

    public ResNet EncoderQ => encoder_q;

    public ResNet EncoderK => encoder_k;

    public Tensor Queue => queue;

    public long QueuePointer => queue_ptr.item<long>();

    /// <summary>The query encoder's parameters and gradients in flat buffers, once <see cref="UseFlatParameters"/> ran.</summary>
    public FlatParameters? FlatQ { get; private set; }

    /// <summary>The key encoder's parameters in a flat buffer (same order as <see cref="FlatQ"/>), once <see cref="UseFlatParameters"/> ran.</summary>
    public FlatParameters? FlatK { get; private set; }

    /// <summary>
    /// Moves each encoder's parameters into one contiguous buffer (the query encoder's gradients too), values
    /// unchanged, so that the momentum update is one operation; call it after any move to a device (which replaces
    /// parameters) and hand <see cref="FlatQ"/> to the optimizer (<see cref="Sgd.UseFlat"/>).
    /// </summary>
    public void UseFlatParameters()
    {
        if (FlatQ is not null)
        {
            return;
        }
        FlatQ = FlatParameters.Adopt(encoder_q.parameters().ToList(), gradients: true);
        FlatK = FlatParameters.Adopt(encoder_k.parameters().ToList(), gradients: false);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            FlatQ?.Dispose();
            FlatK?.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>θ_k ← m·θ_k + (1−m)·θ_q, parameters only (buffers are each encoder's own), as the official code.</summary>
    public void MomentumUpdate()
    {
        using var _ = no_grad();
        double m = Settings.Momentum;
        using Scalar keep = m, take = 1 - m; // held (HeldScalar)
        if (FlatQ is not null && FlatK is not null)
        {
            FlatK.CheckIntact();
            FlatK.Data.mul_(keep).add_(FlatQ.Data, alpha: take);
            return;
        }
        foreach (var (pq, pk) in encoder_q.parameters().Zip(encoder_k.parameters()))
        {
            pk.mul_(keep).add_(pq, alpha: take);
        }
    }

    /// <summary>
    /// Writes <paramref name="keys"/> (n x dim, in global batch order) at the pointer and advances it. When K is
    /// not a multiple of n the write wraps around to the start of the queue, so the oldest keys are always the
    /// ones replaced (the official code asserts K % n == 0 instead).
    /// </summary>
    public void Enqueue(Tensor keys)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        long n = keys.shape[0];
        long k = Settings.QueueSize;
        if (n > k)
        {
            throw new InvalidOperationException($"cannot enqueue {n} keys into a queue of {k}: the queue must hold at least one global batch");
        }
        long ptr = queue_ptr.item<long>();
        var keysT = keys.t(); // dim x n
        long first = Math.Min(n, k - ptr);
        queue.narrow(1, ptr, first).copy_(keysT.narrow(1, 0, first));
        if (first < n)
        {
            queue.narrow(1, 0, n - first).copy_(keysT.narrow(1, first, n - first));
        }
        using Scalar next = (ptr + n) % k; // held (HeldScalar)
        queue_ptr.fill_(next);
    }

    /// <summary>
    /// One direction of the contrastive loss for this worker's share: queries from <paramref name="imQ"/>, keys
    /// from <paramref name="imK"/> through the key encoder with ShuffleBN. Returns the loss summed over the
    /// local share and divided by the global batch (so that summing over workers gives the global mean), the
    /// number of correct instance predictions, and all keys of the global batch in global order.
    /// </summary>
    public (Tensor Loss, Tensor Correct, Tensor KeysGlobal) ContrastiveLoss(Tensor imQ, Tensor imK, ShuffleContext ctx)
    {
        using var scope = NewDisposeScope();
        var q = nn.functional.normalize(encoder_q.forward(imQ), dim: 1); // queries: n x C
        Tensor kMine, kGlobal;
        using (no_grad())
        {
            (kMine, kGlobal) = KeysWithShuffleBn(imK, ctx);
        }
        var lPos = (q * kMine).sum(1, keepdim: true);  // positive logits: n x 1
        var lNeg = q.mm(queue);                         // negative logits: n x K
        using Scalar temperature = Settings.Temperature, globalBatch = ctx.Layout.GlobalBatch; // held (HeldScalar)
        var logits = cat([lPos, lNeg], 1).div_(temperature); // logits: n x (1+K)
        var labels = zeros(logits.shape[0], dtype: ScalarType.Int64, device: logits.device); // positives are the 0-th
        var loss = nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.Sum).div(globalBatch);
        Tensor correct;
        using (no_grad())
        {
            correct = logits.argmax(1).eq(HeldScalar.Zero).sum().to(ScalarType.Float32);
        }
        return (loss.MoveToOuterDisposeScope(), correct.MoveToOuterDisposeScope(), kGlobal.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// ShuffleBN: the key batch is permuted across the global batch (and so across BN groups and workers)
    /// before the key encoder and un-permuted after, so BN statistics cannot reveal which key is positive.
    /// Returns this worker's keys (local order) and the whole batch's keys (global order).
    /// </summary>
    private (Tensor Mine, Tensor Global) KeysWithShuffleBn(Tensor imK, ShuffleContext ctx)
    {
        var layout = ctx.Layout;
        var counts = layout.Counts();
        var positions = layout.Positions(ctx.Rank);
        var xAll = ctx.Collective.AllGather(imK, counts);                  // B x 3 x H x W, rank-major
        var inRows = new long[positions.Count];
        for (int i = 0; i < inRows.Length; i++)
        {
            inRows[i] = layout.GatheredRow(ctx.Permutation[positions[i]]); // slot i gets image π(i)
        }
        var xShuffled = xAll.index_select(0, tensor(inRows, device: xAll.device));
        encoder_k.SetBnGroups(layout.LocalGroups(ctx.Rank));
        var k = nn.functional.normalize(encoder_k.forward(xShuffled), dim: 1); // keys of my slots: n x C
        var kAll = ctx.Collective.AllGather(k, counts);                  // B x C, rank-major by slot
        var globalRows = new long[layout.GlobalBatch];
        for (int j = 0; j < globalRows.Length; j++)
        {
            globalRows[j] = layout.GatheredRow(ctx.InversePermutation[j]); // image j's key sits at slot π⁻¹(j)
        }
        var kGlobal = kAll.index_select(0, tensor(globalRows, device: kAll.device));
        if (layout.IsIdentity)
        {
            return (kGlobal, kGlobal);
        }
        var mineRows = new long[positions.Count];
        for (int i = 0; i < mineRows.Length; i++)
        {
            mineRows[i] = positions[i];
        }
        return (kGlobal.index_select(0, tensor(mineRows, device: kGlobal.device)), kGlobal);
    }
}

/// <summary>What ShuffleBN needs for one pass of one step: the group, the layout and the permutation π.</summary>
public sealed class ShuffleContext
{
    public ShuffleContext(ICollective collective, BatchLayout layout, int[] permutation)
    {
        Collective = collective;
        Layout = layout;
        Permutation = permutation;
        InversePermutation = new int[permutation.Length];
        for (int i = 0; i < permutation.Length; i++)
        {
            InversePermutation[permutation[i]] = i;
        }
    }

    public ICollective Collective { get; }

    public BatchLayout Layout { get; }

    public int Rank => Collective.Rank;

    public int[] Permutation { get; }

    public int[] InversePermutation { get; }
}
