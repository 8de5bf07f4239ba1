using System.Runtime.InteropServices;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCo.Model.Training;

/// <summary>
/// The parameters of one encoder as views of one contiguous buffer (<see cref="Data"/>), and optionally their
/// gradients as views of another (<see cref="Grad"/>), so that what touches every parameter alike (the momentum
/// update, SGD, the gradient all-reduce) is one operation on one tensor instead of a loop, a concatenation and copies
/// back. Each parameter keeps its identity, name, shape and <c>requires_grad</c>; only its storage moves
/// (<c>Tensor.set_</c>), so modules, state dicts and checkpoints see nothing different. Backward accumulates into
/// the gradient views in place (autograd adds into a gradient that exists). Whatever replaces a parameter's storage
/// afterwards (<c>Module.to</c> to another device) would silently detach it from the buffer; <see cref="CheckIntact"/>
/// catches that, and the step calls it.
/// </summary>
public sealed class FlatParameters : IDisposable
{
    private readonly long[] _offsets;
    private readonly IntPtr[] _dataPointers;
    private readonly IntPtr[] _gradPointers;

    private FlatParameters(IReadOnlyList<Parameter> parameters, long[] offsets, Tensor data, Tensor? grad)
    {
        Parameters = parameters;
        _offsets = offsets;
        Data = data;
        Grad = grad;
        _dataPointers = parameters.Select(p => Address(p)).ToArray();
        _gradPointers = grad is null ? [] : parameters.Select(p => Address(p.grad!)).ToArray();
    }

    /// <summary>The parameters, in buffer order.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Every parameter's values, one after the other in <see cref="Parameters"/>' order.</summary>
    public Tensor Data { get; }

    /// <summary>Every parameter's gradient in the same order; null when the buffer was made without gradients.</summary>
    public Tensor? Grad { get; }

    /// <summary>Elements in all.</summary>
    public long Count => Data.numel();

    /// <summary>Where parameter <paramref name="index"/> starts in the buffers.</summary>
    public long Offset(int index) => _offsets[index];

    /// <summary>
    /// Moves <paramref name="parameters"/> (one dtype, one device) into one buffer in the given order, values unchanged;
    /// with <paramref name="gradients"/>, gives each a zero gradient that is a view of one gradient buffer.
    /// </summary>
    /// <exception cref="ArgumentException">The parameters differ in dtype or device, or one is listed twice.</exception>
    public static FlatParameters Adopt(IReadOnlyList<Parameter> parameters, bool gradients)
    {
        if (parameters.Count == 0)
        {
            throw new ArgumentException("no parameters to flatten", nameof(parameters));
        }
        var first = parameters[0];
        if (parameters.Any(p => p.dtype != first.dtype || p.device_type != first.device_type || p.device_index != first.device_index))
        {
            throw new ArgumentException("flat parameters share one dtype and one device; these differ", nameof(parameters));
        }
        if (parameters.Distinct(ReferenceEqualityComparer.Instance).Count() != parameters.Count)
        {
            throw new ArgumentException("a parameter is listed twice", nameof(parameters));
        }
        var offsets = new long[parameters.Count];
        long total = 0;
        for (int i = 0; i < parameters.Count; i++)
        {
            offsets[i] = total;
            total += parameters[i].numel();
        }
        var data = empty(total, dtype: first.dtype, device: first.device);
        var grad = gradients ? zeros(total, dtype: first.dtype, device: first.device) : null;
        using (no_grad())
        {
            for (int i = 0; i < parameters.Count; i++)
            {
                var p = parameters[i];
                using var view = data.narrow(0, offsets[i], p.numel()).view(p.shape);
                view.copy_(p);
                p.set_(view);
                if (grad is not null)
                {
                    p.grad = grad.narrow(0, offsets[i], p.numel()).view(p.shape);
                }
            }
        }
        return new FlatParameters(parameters, offsets, data, grad);
    }

    /// <summary>
    /// Checks that every parameter (and gradient) still lives in the buffers: a parameter whose storage was replaced would
    /// no longer be updated by the buffer-wide operations.
    /// </summary>
    /// <exception cref="InvalidOperationException">A parameter or gradient left its buffer (the message names its index).</exception>
    public void CheckIntact()
    {
        for (int i = 0; i < Parameters.Count; i++)
        {
            var p = Parameters[i];
            if (Address(p) != _dataPointers[i])
            {
                throw new InvalidOperationException($"parameter {i} ({string.Join("x", p.shape)}) no longer lives in its flat buffer: its storage was replaced");
            }
            if (Grad is not null && (p.grad is null || Address(p.grad) != _gradPointers[i]))
            {
                throw new InvalidOperationException($"the gradient of parameter {i} ({string.Join("x", p.shape)}) no longer lives in its flat buffer: it was replaced or dropped");
            }
        }
    }

    /// <summary>
    /// Where a tensor's first element lies: its storage's address plus its offset. TorchSharp 0.107 keeps the storage's
    /// address internal, so it is asked of LibTorchSharp, which TorchSharp has loaded already.
    /// </summary>
    private static IntPtr Address(Tensor tensor) =>
        StorageAddress.THSStorage_data_ptr(tensor.Handle) + (nint)(tensor.storage_offset() * tensor.ElementSize);

    public void Dispose()
    {
        Data.Dispose();
        Grad?.Dispose();
    }
}

/// <summary><c>void* THSStorage_data_ptr(const Tensor)</c> of LibTorchSharp: a storage's first byte (TorchSharp keeps it internal).</summary>
internal static partial class StorageAddress
{
    [LibraryImport("LibTorchSharp")]
    internal static partial IntPtr THSStorage_data_ptr(IntPtr tensor);
}
