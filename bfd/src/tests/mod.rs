mod packet;
mod seeds;
mod session;
mod sim;
