using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Training;

/// <summary>Where a worker computes: <c>moco.host.device</c> once <c>auto</c> is resolved. A property of a process, never of a run.</summary>
public enum ComputeDevice
{
    /// <summary>The CPU (libtorch's CPU kernels, as every test on a machine without a GPU runs).</summary>
    Cpu,

    /// <summary>CUDA: the worker of local slot i computes on <c>cuda:i</c>.</summary>
    Cuda,
}

/// <summary>The torch device of a local worker slot.</summary>
public static class ComputeDevices
{
    /// <summary>
    /// The device local slot <paramref name="localSlot"/> computes on: null for <see cref="ComputeDevice.Cpu"/> (the model
    /// stays where it is built, exactly as before devices existed), <c>cuda:localSlot</c> for <see cref="ComputeDevice.Cuda"/>.
    /// </summary>
    /// <param name="device">The process's device kind.</param>
    /// <param name="localSlot">The worker's slot on this process (0 for the first worker it hosts).</param>
    public static Device? For(ComputeDevice device, int localSlot)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(localSlot);
        return device switch
        {
            ComputeDevice.Cpu => null,
            ComputeDevice.Cuda => new Device(DeviceType.CUDA, localSlot),
            _ => throw new ArgumentOutOfRangeException(nameof(device), device, "not a compute device"),
        };
    }
}
